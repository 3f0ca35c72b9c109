# Input functions, wildcard constraints and config lookups shared by the rules. The config is
# validated and converted once, in the Snakefile (SETTINGS); nothing here applies a default.
import json
import re
import sys
from dataclasses import asdict

from snakemake.settings.types import DeploymentMethod

from scripts.mtpflow.settings import gamma_cell_height, n_chunks, phases_built, relaxed_phase_file

PHASES = list(config["phases"])
REFERENCE = SETTINGS.reference
REFERENCE_ENV = f"../envs/{REFERENCE.code.conda_env}.yaml"   # the registry's env of the code
# The interpreter that runs Snakemake runs the shell rules' scripts (not the first `python`
# on PATH); with --sdm conda, the rule's env provides `python`.
PYTHON = ("python" if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
          else sys.executable)

# The `mpi` resource is empty for single-task jobs: SLURM's executor refuses a non-empty
# `mpi` with tasks=1, and a profile sets it (e.g. "srun --mpi=pmi2") where tasks > 1.
LABEL_MPI = REFERENCE.mpi_launcher if REFERENCE.mpi_tasks > 1 else ""
FIT_MPI = "mpiexec" if SETTINGS.fit.mpi_tasks > 1 else ""
# Keys of a reference section that only the config check reads: left out of the jobs' params,
# so that setting one (or an update that adds one) never relabels anything.
CHECK_ONLY_REFERENCE_KEYS = ("gamma_only_min_height",)


def job_reference(reference):
    """A reference section as the jobs get it (without CHECK_ONLY_REFERENCE_KEYS)."""
    return {k: v for k, v in reference.items() if k not in CHECK_ONLY_REFERENCE_KEYS}


REFERENCE_JSON = json.dumps(job_reference(config["reference"]))
SCRIPTS = f"{workflow.basedir}/scripts"   # the shell rules run scripts/<stage>.py


wildcard_constraints:
    phase="|".join(re.escape(p) for p in PHASES),
    chunk=r"\d+",


def phase_source(wildcards):
    """Stage-1 input: the phase's relaxed unit cell (phases.<name>.relax), else the
    structure file of a {file: ...} phase, else nothing."""
    phase = PHASES_BUILT[wildcards.phase]
    return {"source": phase["file"]} if "file" in phase else {}


def given_phase_source(wildcards):
    """The relaxation's input: the structure file of a {file: ...} phase, nothing otherwise."""
    phase = config["phases"][wildcards.phase]
    return {"source": phase["file"]} if "file" in phase else {}


# Phases with phases.<name>.relax.steps > 0 are built from their relaxed unit cell in every
# job after the relaxation (phases_built); the others as the config gives them.
RELAXED_PHASES = [p for p, spec in config["phases"].items() if spec["relax"]["steps"] > 0]
RELAXED_PHASE_FILES = [relaxed_phase_file(p) for p in RELAXED_PHASES]
PHASES_BUILT = phases_built(config["phases"])


def chunk_files(kind):
    """All stage-2 chunk outputs of one kind ('labelled' or 'failed'), every phase."""
    suffix = ".extxyz" if kind == "labelled" else ".failed.extxyz"
    return [
        f"results/labels/{phase}/chunk_{k}{suffix}"
        for phase in PHASES
        for k in range(n_chunks(config["phases"][phase], REFERENCE.chunk_size))
    ]


def python_launcher(wildcards, resources):
    """'{mpi} -n {tasks}' in front of python when the calculator runs in-process under MPI."""
    if resources.tasks > 1 and stage_reference(wildcards).code.runs_python_under_mpi:
        return f"{resources.mpi} -n {resources.tasks}"
    return ""


def command_prefix(wildcards, resources):
    """'{mpi} -n {tasks}' for codes driven through a command (espresso, vasp)."""
    if resources.tasks > 1 and not stage_reference(wildcards).code.runs_python_under_mpi:
        return f"{resources.mpi} -n {resources.tasks}"
    return ""


# ---- stage 3: seed-scanned fitting ----
SEEDS = SETTINGS.fit.seed_list
FIT_JSON = json.dumps(config["fit"])
# the final fit's: fit.tol replaced by active_learning.final_tol where that is set (unset, the
# same string, so that the final fit's params do not change)
FINAL_FIT_JSON = FIT_JSON if config["active_learning"].get("final_tol") is None \
    else json.dumps({**config["fit"], "tol": config["active_learning"]["final_tol"]})
MTP_JSON = json.dumps(config["mtp"])


def fit_launcher(wildcards, resources):
    return f"{resources.mpi} -n {resources.tasks}" if resources.tasks > 1 else ""


# ---- stage 4: active learning (the iteration loop walks checkpoints.al_iteration) ----
AL = SETTINGS.active_learning
AL_RUNS = AL.runs()
AL_PARAMS = AL.iteration_params()
VALIDATION_RUNS = {name: asdict(run) for name, run in SETTINGS.validation.runs().items()}


# Fidelity stages (fidelity_stages): one loop per reference, in results/al/stage-<name>/;
# without them the one loop lives in results/al/. {alroot} is that folder under results/.
STAGES = SETTINGS.fidelity_stages
AL_ROOTS = [s.al_root for s in STAGES] or ["al"]
_final_reference = config["fidelity_stages"][-1]["reference"] if STAGES else config["reference"]
FINAL_REFERENCE = job_reference(_final_reference)
FINAL_REFERENCE_ENV = f"../envs/{(STAGES[-1].reference if STAGES else REFERENCE).code.conda_env}.yaml"
# validation's energy-volume and elastic cells are repeated to this height (Å): a Γ-only final
# reference's gamma_only_min_height, else 0 (unit cells)
FINAL_GAMMA_MIN_HEIGHT = gamma_cell_height(_final_reference)


wildcard_constraints:
    i=r"\d{3}",
    alroot="|".join(re.escape(r) for r in AL_ROOTS),
    stage="|".join(re.escape(s.name) for s in STAGES[1:]) or "no-stage",
    scenario="|".join(re.escape(s) for s in AL_RUNS) or "no-scenario",
    vscenario="|".join(re.escape(s) for s in VALIDATION_RUNS) or "no-scenario",


def stage_index(wildcards):
    """The fidelity stage of a job ({alroot} or {stage}); 0 without stages."""
    if hasattr(wildcards, "stage"):
        return [s.name for s in STAGES].index(wildcards.stage)
    return AL_ROOTS.index(wildcards.alroot) if hasattr(wildcards, "alroot") else 0


def stage_reference(wildcards):
    """ReferenceSettings of a job's stage (the one reference without stages)."""
    return STAGES[stage_index(wildcards)].reference if STAGES else REFERENCE


def stage_label_mpi(wildcards):
    reference = stage_reference(wildcards)
    return reference.mpi_launcher if reference.mpi_tasks > 1 else ""


def al_label_parts(wildcards):
    """Labelling jobs per iteration: the selection (at most max_select new structures, plus
    retried failures) cut into as many equal parts as max_select / reference.chunk_size, so
    that the labels of an iteration run side by side as stage 2's chunks do."""
    return max(1, -(-AL.max_select // stage_reference(wildcards).chunk_size))


def al_label_part_files(folder, kind):
    """The parts' files of a selection labelled in folder (an iteration's, a stage's relabel)."""
    suffix = ".extxyz" if kind == "labelled" else ".failed.extxyz"
    return lambda wildcards: [f"{folder.format(**dict(wildcards.items()))}/label/part_{p}{suffix}"
                              for p in range(al_label_parts(wildcards))]


def stage_env(wildcards):
    return f"../envs/{stage_reference(wildcards).code.conda_env}.yaml"


# The labelling rules of every stage (isolated_energies, al_label, their fidelity_* uses): the
# stage's conda env, by a function only where there are stages.
STAGE_REFERENCE_ENV = REFERENCE_ENV if not STAGES else stage_env


def stage_reference_json(wildcards):
    return json.dumps(job_reference(config["fidelity_stages"][stage_index(wildcards)]["reference"]
                                    if STAGES else config["reference"]))


def stage_start(alroot):
    """What a stage's loop starts from: stage 3 (first stage), or the stage's relabelled and
    refitted start (results/al/stage-<name>/start/), with its test set and isolated atoms."""
    k = AL_ROOTS.index(alroot)
    if k == 0:
        return {"potential": "results/fit/best.mtp", "state": "results/al/start/best.als.npz",
                "train": "results/labels/train.extxyz", "test": "results/labels/test.extxyz",
                "isolated": "results/labels/isolated.json"}
    start = f"results/{alroot}/start"
    return {"potential": f"{start}/potential.mtp", "state": f"{start}/potential.als.npz",
            "train": f"{start}/train.extxyz", "test": f"{start}/test.extxyz",
            "isolated": f"results/{alroot}/isolated.json"}


def al_dir(alroot, i):
    return f"results/{alroot}/iter_{int(i):03d}"


def al_previous(wildcards):
    """What iteration {i} starts from: the stage's start for i = 0, else iteration i-1."""
    i = int(wildcards.i)
    if i == 0:
        start = stage_start(wildcards.alroot)
        return {k: start[k] for k in ("potential", "state", "train")}
    prev = al_dir(wildcards.alroot, i - 1)
    return {"potential": f"{prev}/potential.mtp", "state": f"{prev}/potential.als.npz",
            "train": f"{prev}/train.extxyz", "failed": f"{prev}/failed.extxyz"}


def stage_data(alroot):
    """The held-out test set and isolated-atom energies of a stage (its fits' errors)."""
    start = stage_start(alroot)
    return {"test": start["test"], "isolated": start["isolated"]}


def al_previous_last(wildcards):
    """The previous iteration's last accepted state of this run, to continue from
    (active_learning.continue_runs); nothing in iteration 0."""
    i = int(wildcards.i)
    if i == 0 or not AL.continue_runs:
        return {}
    return {"previous_last": f"{al_dir(wildcards.alroot, i - 1)}/md/{wildcards.scenario}.last.extxyz"}


def al_md_outputs(kind):
    """Every scenario's MD candidates ('extxyz') or summaries ('json') of iteration {i}."""
    return lambda wildcards: [f"{al_dir(wildcards.alroot, wildcards.i)}/md/{s}.{kind}"
                              for s in AL_RUNS]


def is_converged(summary_file):
    with open(summary_file) as fh:
        return bool(json.load(fh)["converged"])


def al_iterations(alroot):
    """Indices of the iterations that run in a stage: walk the checkpoints until one has
    converged or max_iterations is reached. checkpoints.al_iteration.get() raises (and
    Snakemake schedules that iteration) until iteration.json exists."""
    done = []
    for i in range(0 if AL.skipped else AL.max_iterations):
        done.append(i)
        summary = checkpoints.al_iteration.get(alroot=alroot, i=f"{i:03d}").output.summary
        if is_converged(summary):
            break
    return done


def stage_summaries(alroot):
    return [f"{al_dir(alroot, i)}/iteration.json" for i in al_iterations(alroot)]


def al_summaries(wildcards):
    """iteration.json of the job's stage ({alroot}), or of every stage."""
    roots = [wildcards.alroot] if hasattr(wildcards, "alroot") else AL_ROOTS
    return [f for r in roots for f in stage_summaries(r)]


def al_failed(wildcards):
    return [f"{al_dir(wildcards.alroot, i)}/failed.extxyz" for i in al_iterations(wildcards.alroot)]


def al_final(alroot):
    """A stage's training set and potential after its loop (its start's without iterations)."""
    iterations = al_iterations(alroot)
    if not iterations:
        start = stage_start(alroot)
        return {"train": start["train"], "potential": start["potential"]}
    last = al_dir(alroot, iterations[-1])
    return {"train": f"{last}/train.extxyz", "potential": f"{last}/potential.mtp"}


def al_final_train(wildcards):
    """The training set after the last stage's loop (stage 2's when max_iterations is 0)."""
    return al_final(AL_ROOTS[-1])["train"]


def final_stage_test(wildcards):
    """The held-out test set of the last stage (stage 2's, relabelled by a fidelity stage)."""
    return stage_data(AL_ROOTS[-1])["test"]


# active_learning.final_test_fraction > 0: the final fit trains on results/final/train.extxyz
# and is tested on results/final/test.extxyz (rule final_split), else on the loop's sets.
FINAL_SPLIT = AL.final_test_fraction > 0


def final_train(wildcards):
    """The final fit's training set."""
    return "results/final/train.extxyz" if FINAL_SPLIT else al_final_train(wildcards)


def final_test(wildcards):
    """The final fit's test set (and validation's)."""
    return "results/final/test.extxyz" if FINAL_SPLIT else final_stage_test(wildcards)


def final_isolated(wildcards):
    return stage_data(AL_ROOTS[-1])["isolated"]


def validation_potential(wildcards):
    """Stage 5 MD: the final potential and its active set for the MTP run, nothing for the
    reference run."""
    return {"potential": "results/final/potential.mtp",
            "state": "results/final/potential.als.npz"} if wildcards.engine == "mtp" else {}


def validation_reference(wildcards):
    """Stage 5 comparison: the reference MD of a scenario, unless its reference is disabled."""
    if not VALIDATION_RUNS[wildcards.vscenario]["reference"].get("enabled", True):
        return {}
    d = f"results/validation/{wildcards.vscenario}"
    return {"reference": f"{d}/reference.extxyz", "reference_record": f"{d}/reference.json"}


def committee_file(wildcards):
    return {"committee": "results/fit/committee.json"} if AL.committee_enabled else {}


# ---- fidelity stages (rules/fidelity.smk) ----
def fidelity_previous(wildcards):
    """The previous stage's training set and potential after its loop, and stage 2's test set."""
    k = stage_index(wildcards)
    return {**al_final(AL_ROOTS[k - 1]), "test": "results/labels/test.extxyz"}


def sparsify_dir(stage):
    return f"results/al/stage-{stage}/sparsify"


def fidelity_sparsify_inputs(wildcards):
    """The previous stage's final training set and potential, and its own test set and
    isolated-atom energies (labels at the previous stage's fidelity)."""
    previous = AL_ROOTS[stage_index(wildcards) - 1]
    return {**al_final(previous), **stage_data(previous)}


def fidelity_collect_inputs(wildcards):
    """fidelity_previous; the training set is fidelity_sparsify's kept set (and its summary)
    when the stage sets sparsify."""
    inputs = fidelity_previous(wildcards)
    if STAGES[stage_index(wildcards)].sparsify:
        d = sparsify_dir(wildcards.stage)
        inputs.update(train=f"{d}/kept.extxyz", sparsify=f"{d}/summary.json")
    return inputs


def fidelity_record_inputs(wildcards):
    """Each stage's start and end potentials, relabel (and sparsify) summaries and iterations;
    the last stage's test set (the most accurate labels)."""
    inputs = {"test": stage_data(AL_ROOTS[-1])["test"], "labels": "results/labels/summary.json"}
    for k, stage in enumerate(STAGES):
        root = AL_ROOTS[k]
        inputs[f"start_{stage.name}"] = stage_start(root)["potential"]
        inputs[f"end_{stage.name}"] = al_final(root)["potential"]
        inputs[f"iterations_{stage.name}"] = stage_summaries(root)
        if k:
            inputs[f"relabel_{stage.name}"] = f"results/{root}/relabel/summary.json"
        if k and stage.sparsify:
            inputs[f"sparsify_{stage.name}"] = f"{sparsify_dir(stage.name)}/summary.json"
    return inputs


# ---- the hull target ----
def hull_inputs(wildcards):
    """The MTP's relaxed pool, and the reference's when hull.reference_hull."""
    inputs = {"relaxed": "results/hull/relaxed.extxyz", "record": "results/hull/record.json"}
    if config["hull"]["reference_hull"]:
        inputs["reference"] = "results/hull/reference_relaxed.extxyz"
    return inputs


def hull_targets():
    return ["results/hull/hull.csv", "results/hull/hull.png"] if config["hull"]["enabled"] else []
