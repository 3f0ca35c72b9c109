# Input functions, wildcard constraints and config lookups shared by the rules. The config is
# validated and converted once, in the Snakefile (SETTINGS); nothing here applies a default.
import json
import re
import sys
from dataclasses import asdict

from snakemake.settings.types import DeploymentMethod

from scripts.mtpflow.settings import n_chunks

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
REFERENCE_JSON = json.dumps(config["reference"])
SCRIPTS = f"{workflow.basedir}/scripts"   # the shell rules run scripts/<stage>.py


wildcard_constraints:
    phase="|".join(re.escape(p) for p in PHASES),
    chunk=r"\d+",


def phase_source(wildcards):
    """Stage-1 input: the structure file of a {file: ...} phase, nothing otherwise."""
    phase = config["phases"][wildcards.phase]
    return {"source": phase["file"]} if "file" in phase else {}


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
    if resources.tasks > 1 and REFERENCE.code.runs_python_under_mpi:
        return f"{resources.mpi} -n {resources.tasks}"
    return ""


def command_prefix(wildcards, resources):
    """'{mpi} -n {tasks}' for codes driven through a command (espresso, vasp)."""
    if resources.tasks > 1 and not REFERENCE.code.runs_python_under_mpi:
        return f"{resources.mpi} -n {resources.tasks}"
    return ""


# ---- stage 3: seed-scanned fitting ----
SEEDS = SETTINGS.fit.seed_list
FIT_JSON = json.dumps(config["fit"])
MTP_JSON = json.dumps(config["mtp"])


def fit_launcher(wildcards, resources):
    return f"{resources.mpi} -n {resources.tasks}" if resources.tasks > 1 else ""


# ---- stage 4: active learning (the iteration loop walks checkpoints.al_iteration) ----
AL = SETTINGS.active_learning
AL_RUNS = AL.runs()
AL_PARAMS = AL.iteration_params()
VALIDATION_RUNS = {name: asdict(run) for name, run in SETTINGS.validation.runs().items()}


wildcard_constraints:
    i=r"\d{3}",
    scenario="|".join(re.escape(s) for s in AL_RUNS) or "no-scenario",
    vscenario="|".join(re.escape(s) for s in VALIDATION_RUNS) or "no-scenario",


def al_dir(i):
    return f"results/al/iter_{int(i):03d}"


def al_previous(wildcards):
    """What iteration {i} starts from: stage 3 for i = 0, else iteration i-1."""
    i = int(wildcards.i)
    if i == 0:
        return {"potential": "results/fit/best.mtp", "state": "results/al/start/best.als.npz",
                "train": "results/labels/train.extxyz"}
    prev = al_dir(i - 1)
    return {"potential": f"{prev}/potential.mtp", "state": f"{prev}/potential.als.npz",
            "train": f"{prev}/train.extxyz", "failed": f"{prev}/failed.extxyz"}


def al_previous_last(wildcards):
    """The previous iteration's last accepted state of this run, to continue from
    (active_learning.continue_runs); nothing in iteration 0."""
    i = int(wildcards.i)
    if i == 0 or not AL.continue_runs:
        return {}
    return {"previous_last": f"{al_dir(i - 1)}/md/{wildcards.scenario}.last.extxyz"}


def al_md_outputs(kind):
    """Every scenario's MD candidates ('extxyz') or summaries ('json') of iteration {i}."""
    return lambda wildcards: [f"{al_dir(wildcards.i)}/md/{s}.{kind}" for s in AL_RUNS]


def is_converged(summary_file):
    with open(summary_file) as fh:
        return bool(json.load(fh)["converged"])


def al_iterations():
    """Indices of the iterations that run: walk the checkpoints until one has converged or
    max_iterations is reached. checkpoints.al_iteration.get() raises (and Snakemake
    schedules that iteration) until iteration.json exists."""
    done = []
    for i in range(0 if AL.skipped else AL.max_iterations):
        done.append(i)
        summary = checkpoints.al_iteration.get(i=f"{i:03d}").output.summary
        if is_converged(summary):
            break
    return done


def al_summaries(wildcards):
    return [f"{al_dir(i)}/iteration.json" for i in al_iterations()]


def al_failed(wildcards):
    return [f"{al_dir(i)}/failed.extxyz" for i in al_iterations()]


def al_final_train(wildcards):
    """The training set after the loop (stage 2's when max_iterations is 0)."""
    iterations = al_iterations()
    if not iterations:
        return "results/labels/train.extxyz"
    return f"{al_dir(iterations[-1])}/train.extxyz"


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


# ---- the hull target ----
def hull_inputs(wildcards):
    """The MTP's relaxed pool, and the reference's when hull.reference_hull."""
    inputs = {"relaxed": "results/hull/relaxed.extxyz", "record": "results/hull/record.json"}
    if config["hull"]["reference_hull"]:
        inputs["reference"] = "results/hull/reference_relaxed.extxyz"
    return inputs


def hull_targets():
    return ["results/hull/hull.csv", "results/hull/hull.png"] if config["hull"]["enabled"] else []
