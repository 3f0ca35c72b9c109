"""Typed settings: the config, validated against config/schema.yaml (which holds every
default), converted once into dataclasses that map themselves to library calls.

Nothing here applies a default: a key the schema fills is read as it is. The cross-key checks
that a JSON schema cannot express run in :func:`check_config`, before any job runs; each
message names the key (and the file, for files the config names).
"""
from __future__ import annotations

import copy
import json
import math
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "config" / "schema.yaml"


class ConfigError(ValueError):
    """A config mistake, reported as one line naming the key."""


class ConfigWarning(UserWarning):
    """A config that runs but is likely wrong, reported as one line naming the key (the
    Snakefile prints each before any job runs)."""


def build(cls, data):
    """cls(**data) with the keys cls knows (the schema has already rejected unknown keys);
    `data` may be a JSON string (the argument of an MPI job's script)."""
    if isinstance(data, str):
        data = json.loads(data)
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class MTPSettings:
    level: int
    radial_basis_size: int
    min_dist: float
    max_dist: float
    radial_basis_type: str

    def initial_potential(self, elements):
        from mtplib.potential import MTPotential
        return MTPotential.from_level(self.level, list(elements), self.min_dist, self.max_dist,
                                      self.radial_basis_size, self.radial_basis_type)


@dataclass(frozen=True)
class FitSettings:
    weights: dict
    scaling: str
    seeds: object
    test_fraction: float
    split_seed: int
    metric: str
    forces_cap: float | None
    committee_size: int
    max_iter: int
    tol: float
    stop_window: int
    optimize_radial: bool
    radial_optimizer: str
    mpi_tasks: int

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else [int(s) for s in self.seeds]

    def fit_kwargs(self, max_iter: int | None = None) -> dict:
        """Keyword arguments of mtplib.training.fit; `max_iter` overrides fit.max_iter."""
        w = self.weights
        return dict(weights=(w["energy"], w["forces"], w["stress"]), scaling=self.scaling,
                    max_iter=max_iter or self.max_iter, tol=self.tol,
                    stop_window=self.stop_window, optimize_radial=self.optimize_radial,
                    radial_optimizer=self.radial_optimizer, forces_cap=self.forces_cap)

    def split(self, images):
        """(train, test) of the stage-2 labels: the one fixed split of the workflow."""
        from mtplib.training import train_test_split
        return train_test_split(images, self.test_fraction, self.split_seed)


@dataclass(frozen=True)
class ReferenceSettings:
    name: str
    kwargs: dict
    mpi_tasks: int
    mpi_launcher: str
    threads: int
    chunk_size: int
    retries: int
    timeout: float | None
    isolated_box: float
    isolated_spin: bool
    blas: str

    @property
    def code(self):
        from mtplib.labeling.registry import get_code
        return get_code(self.name)

    def calculator_factory(self, mpi_prefix: str = "", symbols=None):
        from mtplib.labeling.registry import calculator_factory
        return calculator_factory(self.name, self.kwargs, mpi_prefix, symbols=symbols,
                                  blas=self.blas)

    def make_calculator(self, mpi_prefix: str = ""):
        from mtplib.labeling.registry import make_calculator
        return make_calculator(self.name, self.kwargs, mpi_prefix, blas=self.blas)


def schedule_segments(entries, where: str) -> tuple:
    """The Segments (mtplib.active.grid) of a schedule given as Segments or as mappings (the
    config, or dataclasses.asdict in a rule's params); a bad one is a ConfigError naming
    '<where>.schedule[k]'."""
    from mtplib.active.grid import Segment, parse_schedule
    entries = list(entries or ())
    if all(isinstance(e, Segment) for e in entries):
        return tuple(entries)
    try:
        return tuple(parse_schedule(entries, where="schedule"))
    except ValueError as err:          # "schedule[k]: what is wrong"
        key, why = str(err).split(": ", 1)
        raise ConfigError(f"config key '{where}.{key}': {why}") from None


@dataclass(frozen=True)
class FidelityStage:
    """One reference of fidelity_stages: active learning on it until converged, then the next."""

    name: str
    reference: ReferenceSettings
    md_frames: int
    sparsify: bool = False              # the previous stage's training set, before relabelling
    sparsify_threshold: float = 1.001

    @property
    def al_root(self) -> str:
        """The stage's folder under results/ (and logs/)."""
        return f"al/stage-{self.name}"


# a scenario's `equilibration` when the config gives none (the schema's defaults)
NO_DAMPED_START = {"steps": 0, "friction": 0.05}


def relaxed_phase_file(phase: str) -> str:
    """Where relax_phase writes a phase's relaxed unit cell, relative to the working directory."""
    return f"results/structures/relaxed/{phase}.extxyz"


def phases_built(phases: dict, root: str | Path | None = None) -> dict:
    """The phases as every job after the relaxation builds them: a phase with
    relax.steps > 0 from its relaxed unit cell (a {file: ...} phase; under `root`, a run's
    directory, when given), the others as the config gives them. `relax` is left out (read by
    relax_phase alone): a phase without it keeps the params it had before the key existed,
    and an update reruns nothing."""
    def relaxed(name):
        path = relaxed_phase_file(name)
        return path if root is None else str(Path(root) / path)
    return {name: ({**{k: v for k, v in spec.items()
                       if k not in ("file", "bulk", "crystal", "relax")},
                    "file": relaxed(name)} if spec["relax"]["steps"] > 0
                   else {k: v for k, v in spec.items() if k != "relax"})
            for name, spec in phases.items()}


def damped_start_kwargs(equilibration: dict) -> dict:
    """run_md's keywords of a scenario's damped start (its `equilibration` section)."""
    return dict(equilibration_steps=int(equilibration["steps"]),
                equilibration_friction=float(equilibration["friction"]))


@dataclass(frozen=True)
class MDRun:
    """One MD run of a scenario: one temperature and one start structure."""

    name: str
    scenario: str
    start: dict
    ensemble: str
    temperature: float
    scaling: float              # of the start cell (positions scaled with it)
    pressure: float
    steps: int
    timestep: float
    seed: int
    interval: int
    max_forces_check: float
    ramp_start: float | None
    ramp_steps: int
    schedule: tuple = ()        # mtplib.active.grid.Segments that prepare the run (a liquid)
    equilibration: dict = field(default_factory=lambda: dict(NO_DAMPED_START))

    def __post_init__(self):
        object.__setattr__(self, "schedule", schedule_segments(
            self.schedule, f"active_learning.scenarios[{self.scenario}]"))

    def segments(self):
        """The run as a schedule: the preparation segments, then `steps` at `temperature`
        in the start cell scaled by `scaling` (scalings relative to the start structure)."""
        from mtplib.active.grid import Segment
        return list(self.schedule) + [Segment(self.steps, self.temperature, self.scaling)]

    @property
    def steps_requested(self) -> int:
        """Steps of a fresh run: its schedule or damped start, then its own steps."""
        return sum(seg.steps for seg in self.segments()) + int(self.equilibration["steps"])

    def md_start_kwargs(self) -> dict:
        """run_md's keywords of a fresh run's start (ramp, damped equilibration)."""
        return dict(ramp_steps=self.ramp_steps, ramp_start=self.ramp_start,
                    **damped_start_kwargs(self.equilibration))

    def start_structure(self, phases: dict, where: str, scaled: bool = True):
        """The starting structure (a phase supercell, an amorphous box or a file), its cell
        scaled by `scaling` (unless not `scaled`: a schedule scales it per segment)."""
        from mtplib.active.grid import scaled_start
        atoms = self._start(phases, where)
        return atoms if self.scaling == 1.0 or not scaled else scaled_start(atoms, self.scaling)

    def _start(self, phases: dict, where: str):
        from mtplib.structures import amorphous_box, build_phase
        start = self.start
        if "phase" in start:
            atoms = build_phase(start["phase"], phases[start["phase"]])
            return atoms.repeat(tuple(int(n) for n in start["supercell"]))
        if "amorphous" in start:
            am = start["amorphous"]
            return amorphous_box(am["composition"], am["density"], am["n_atoms"], am["seed"],
                                 am["min_distance"], where=f"{where}.start.amorphous",
                                 pair_min_distance=am["pair_min_distance"])
        from ase.io import read
        path = Path(start["file"])
        if not path.exists():
            raise FileNotFoundError(f"config key '{where}.start.file': no such file {path}")
        return read(path)


def expand_scenarios(scenarios: list[dict]) -> dict[str, MDRun]:
    """Run name -> MDRun, one per start phase (``start.phases``) x temperature x lattice
    scaling x trajectory (seeds seed, seed+1, ...), in config order, named by
    ``mtplib.active.grid.expand_grid`` (e.g. ``cu3au_md_600K``, ``md_Cu_300K_x1p02_s1``);
    a scenario's ``schedule`` becomes every run's preparation segments."""
    from mtplib.active.grid import expand_grid
    runs: dict[str, MDRun] = {}
    for sc in scenarios:
        schedule = schedule_segments(sc["schedule"], f"active_learning.scenarios[{sc['name']}]")
        start = dict(sc["start"])
        starts = [start]
        if "phases" in start:
            starts = [{**{k: v for k, v in start.items() if k != "phases"}, "phase": p}
                      for p in start["phases"]]
        for st in starts:
            prefix = "_".join([sc["name"]] + ([st["phase"]] if "phases" in start else []))
            seeds = [sc["seed"] + k for k in range(sc["trajectories"])]
            try:
                points = expand_grid(prefix, sc["temperatures"], sc["lattice_scalings"], seeds)
            except ValueError as err:
                raise ConfigError(f"config key 'active_learning.scenarios[{sc['name']}]': "
                                  f"{err}") from None
            for p in points:
                if p.name in runs:
                    raise ConfigError(f"config key 'active_learning.scenarios': run name "
                                      f"{p.name!r} occurs twice; give the scenarios distinct names")
                runs[p.name] = MDRun(
                    name=p.name, scenario=sc["name"], start=st, ensemble=sc["ensemble"],
                    temperature=p.temperature, scaling=p.scaling, pressure=sc["pressure"],
                    steps=sc["steps"], timestep=sc["timestep"], seed=p.seed,
                    interval=sc["interval"], max_forces_check=sc["max_forces_check"],
                    ramp_start=sc["ramp_start"], ramp_steps=sc["ramp_steps"],
                    schedule=schedule, equilibration=dict(sc["equilibration"]))
    return runs


# The loop-level keys, which the per-iteration jobs are not given: changing them (e.g.
# max_iterations, to continue a finished loop) must not rerun finished iterations.
LOOP_KEYS = ("max_iterations", "final_max_iter", "final_tol", "final_test_fraction",
             "final_split_seed", "scenarios")


@dataclass(frozen=True)
class ActiveLearningSettings:
    gamma_select: float
    gamma_break: float
    max_select: int
    selection_mode: str
    committee_criterion: dict
    refit: str
    refit_max_iter: int | None
    gamma_max: float | None
    md_engine: str
    continue_runs: bool
    convergence: dict
    selection_weights: dict | None = None   # None (or null values): selection_mode's default
    close_approach: float | None = None     # Å above mtp.min_dist (None: off)
    max_iterations: int | None = None     # None: in a per-iteration job (LOOP_KEYS)
    final_max_iter: int | None = None
    final_tol: float | None = None
    final_test_fraction: float = 0.0
    final_split_seed: int = 0
    scenarios: list = field(default_factory=list)

    def iteration_params(self) -> dict:
        """The keys a per-iteration job is given (all but LOOP_KEYS), as a plain dict."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in LOOP_KEYS}

    @property
    def committee_enabled(self) -> bool:
        """The committee criterion is on when enabled, or when it replaces gamma (only)."""
        return bool(self.committee_criterion["enabled"] or self.committee_criterion["only"])

    @property
    def committee_only(self) -> bool:
        return bool(self.committee_criterion["only"])

    def runs(self) -> dict[str, MDRun]:
        return expand_scenarios(self.scenarios)

    def weights(self):
        """mtplib.active.SelectionWeights of the active set (selection_mode's default for
        the weights that are null)."""
        from mtplib.active import SelectionWeights
        return SelectionWeights.of(self.selection_weights, self.selection_mode,
                                   where="config key 'active_learning.selection_weights'")

    def engine(self, run: MDRun) -> str:
        """The MD engine of a run: md_engine where it can run it, else ase."""
        from mtplib.active.md import NATIVE_ENSEMBLES
        native = run.ensemble in NATIVE_ENSEMBLES and not self.committee_enabled
        return "native" if self.md_engine == "native" and native else "ase"

    @property
    def skipped(self) -> str | None:
        """Why the loop runs no iteration (None when it runs): with no exploration scenario
        there is nothing to grade, so nothing can "converge"; the loop is skipped, and said so."""
        if self.max_iterations == 0:
            return "no iterations (max_iterations = 0)"
        if not self.scenarios:
            return ("active learning skipped: config key 'active_learning.scenarios' is empty "
                    "(the final fit uses the stage-2 labels)")
        return None

    def thresholds(self, run: MDRun, min_dist: float | None = None,
                   training_shortest: float | None = None):
        """mtplib.active.Thresholds of one run (with the close-approach criterion when
        `close_approach` is set: give the potential's `min_dist`, and the shortest
        interatomic distance of its training set)."""
        from mtplib.active import Thresholds
        cc = self.committee_criterion
        use_std = self.committee_enabled
        return Thresholds(gamma_select=self.gamma_select, gamma_break=self.gamma_break,
                          std_select=cc["threshold"] if use_std else None,
                          std_break=cc["break_threshold"] if use_std else None,
                          interval=run.interval, max_forces_check=run.max_forces_check,
                          gamma_max=self.gamma_max,
                          criteria=tuple(self.close_approach_criteria(min_dist,
                                                                      training_shortest)))

    def close_approach_criteria(self, min_dist: float | None,
                                training_shortest: float | None = None) -> list:
        """[CloseApproach(select, min_dist)], or [] when off: select is min_dist +
        close_approach, or the training set's shortest distance when that is shorter (a
        distance the potential has been trained on is not an extrapolation; a hot fluid may
        visit it all the time)."""
        from mtplib.active.criteria import CloseApproach
        if self.close_approach is None or min_dist is None:
            return []
        select = min_dist + self.close_approach
        if training_shortest is not None:
            select = min(select, training_shortest)
        return [CloseApproach(select, min_dist)]


@dataclass(frozen=True)
class ValidationRun:
    name: str
    supercell: list
    ensemble: str
    temperature: float
    steps: int
    timestep: float
    seed: int
    phase: str | None = None
    amorphous: dict | None = None
    pressure: float = 0.0
    gamma_interval: int = 10
    reference: dict = field(default_factory=lambda: {"enabled": True, "steps": None})
    equilibration: dict = field(default_factory=lambda: dict(NO_DAMPED_START))

    @property
    def label(self) -> str:
        """What the run starts from, for the verdicts table: the phase or 'amorphous'."""
        return self.phase or "amorphous"

    @property
    def compared(self) -> bool:
        """Whether a reference MD runs and the RDF/ADF are compared."""
        return bool(self.reference.get("enabled", True))

    def start_structure(self, phases: dict, engine: str = "mtp"):
        """The start of the MTP run, or of the reference run (its own box or supercell when
        validation.scenarios[].reference gives one)."""
        from mtplib.structures import amorphous_box, build_phase
        where = f"validation.scenarios[{self.name}]"
        ref = self.reference if engine == "reference" else {}
        amorphous = ref.get("amorphous") or self.amorphous
        if self.phase is None:
            where += ".reference.amorphous" if ref.get("amorphous") else ".amorphous"
            return amorphous_box(amorphous["composition"], amorphous["density"],
                                 amorphous["n_atoms"], amorphous["seed"],
                                 amorphous["min_distance"], where=where,
                                 pair_min_distance=amorphous["pair_min_distance"])
        supercell = ref.get("supercell") or self.supercell
        return build_phase(self.phase, phases[self.phase]).repeat(tuple(int(n) for n in supercell))

    def steps_of(self, engine: str) -> int:
        """Steps of the run with `engine` after its damped start (`equilibration`)."""
        return int(self.reference.get("steps") or self.steps) if engine == "reference" \
            else int(self.steps)


@dataclass(frozen=True)
class ValidationSettings:
    scenarios: list
    rdf: dict
    adf: dict
    energy_volume: bool
    elastic: bool
    valid_data: str | None
    md_force_frames: int
    fail_on_verdict: bool
    tolerances: dict
    coordination_cutoffs: float | dict | None = None

    def runs(self) -> dict[str, ValidationRun]:
        return {v["name"]: build(ValidationRun, v) for v in self.scenarios}


@dataclass(frozen=True)
class Settings:
    """The whole validated config as typed settings."""

    elements: list
    phases: dict
    reference: ReferenceSettings
    mtp: MTPSettings
    fit: FitSettings
    active_learning: ActiveLearningSettings
    validation: ValidationSettings
    fidelity_stages: tuple = ()

    @classmethod
    def from_config(cls, config: dict, checked: bool = False) -> "Settings":
        """Settings of a config that the schema has validated (defaults filled); runs the
        cross-key checks unless ``checked`` (validate_config has run them)."""
        if not checked:
            check_config(config)
        return cls(elements=list(config["elements"]), phases=config["phases"],
                   reference=build(ReferenceSettings, config["reference"]),
                   mtp=build(MTPSettings, config["mtp"]), fit=build(FitSettings, config["fit"]),
                   active_learning=build(ActiveLearningSettings, config["active_learning"]),
                   validation=build(ValidationSettings, config["validation"]),
                   fidelity_stages=tuple(
                       FidelityStage(s["name"], build(ReferenceSettings, s["reference"]),
                                     s["md_frames"], bool(s["sparsify"]),
                                     float(s["sparsify_threshold"]))
                       for s in config["fidelity_stages"]))


# ---- validation of the config ----------------------------------------------------------------
def _short(value, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[:width - 5] + " ...}"


def schema_error_line(err) -> str:
    """One line for a schema violation (a jsonschema ValidationError, or Snakemake's
    WorkflowError that wraps one): the key, what is wrong, and for an unknown key the allowed
    keys nearby (never the schema itself)."""
    import difflib

    import jsonschema
    inner = err
    while inner is not None and not isinstance(inner, jsonschema.ValidationError):
        inner = inner.__cause__ or inner.__context__     # Snakemake raises inside `except`
    if inner is None:
        inner = err
    if not isinstance(inner, jsonschema.ValidationError):
        return str(err).splitlines()[0]
    where = ".".join(str(p) for p in inner.absolute_path)
    key = f"config key '{where}'" if where else "config"
    if inner.validator == "additionalProperties":
        allowed = sorted(inner.schema.get("properties", {}))
        unknown = sorted(set(inner.instance) - set(allowed)) if isinstance(inner.instance, dict) else []
        parts = []
        for u in unknown:
            close = difflib.get_close_matches(u, allowed, n=1)
            parts.append(f"{u!r} was unexpected" + (f" (did you mean {close[0]!r}?)" if close else ""))
        return f"{key}: {'; '.join(parts)}; allowed keys: {', '.join(allowed)}"
    if inner.validator in ("oneOf", "anyOf"):
        what = inner.schema.get("description", "")
        return f"{key} = {_short(inner.instance)} does not match the schema" + (
            f": {what.strip()}" if what else "")
    return f"{key}: {inner.message if len(inner.message) < 200 else _short(inner.instance)}"


def validate_config(config: dict, schema_path: str | Path = SCHEMA_PATH,
                    read_files: bool = True) -> dict:
    """Validate ``config`` in place against the schema (filling defaults), then the cross-key
    checks. Returns ``config``; raises :class:`ConfigError` with one line."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    if config.get("fidelity_stages") and "reference" in config:
        raise ConfigError("config keys 'reference' and 'fidelity_stages': give the references "
                          "only in fidelity_stages (the first one labels stage 2)")
    try:
        validate(config, str(schema_path))
    except WorkflowError as err:
        raise ConfigError(schema_error_line(err)) from None
    if config["fidelity_stages"]:
        config["reference"] = copy.deepcopy(config["fidelity_stages"][0]["reference"])
    check_config(config, read_files=read_files)
    return config


def load_config(path: str | Path, schema_path: str | Path = SCHEMA_PATH) -> dict:
    """Read a YAML config file and validate it (defaults filled)."""
    with open(path) as fh:
        config = yaml.safe_load(fh) or {}
    return validate_config(config, schema_path)


def _phase_symbols(phase: dict) -> set[str] | None:
    """The species of a bulk or crystal phase (None for a file phase: read at stage 1)."""
    from ase.symbols import string2symbols
    if "bulk" in phase:
        return set(string2symbols(phase["bulk"]["name"]))
    if "crystal" in phase:
        return set(phase["crystal"]["symbols"])
    return None


def _read_structure(path, key: str):
    """ase.io.read of a file the config names; any failure is a ConfigError naming both."""
    from ase.io import read
    if not Path(path).is_file():
        raise ConfigError(f"config key '{key}': no such file {path}")
    try:
        atoms = read(path)
    except Exception as err:      # ase.io raises anything on a corrupt file
        detail = str(err).splitlines()[0] if str(err).strip() else "no structure found"
        raise ConfigError(f"config key '{key}': cannot read {path} as a structure "
                          f"({type(err).__name__}: {detail})") from None
    if len(atoms) == 0:
        raise ConfigError(f"config key '{key}': {path} holds no atoms")
    return atoms


def _check_phases(config: dict, read_files: bool) -> None:
    """Every phase builds (bulk/crystal arguments, readable file), holds only the configured
    elements, and its stage-1 structures pass the distance check (stage 1 is seeded, so the
    very structures the job will write are checked here)."""
    from mtplib.analysis.errors import min_distance
    from mtplib.structures import BULK_STRUCTURES, OVERLAP_DISTANCE, build_phase, displace
    elements = config["elements"]
    for name, phase in config["phases"].items():
        sources = [k for k in ("file", "bulk", "crystal") if k in phase]
        if len(sources) != 1:
            raise ConfigError(f"config key 'phases.{name}': give exactly one of file, bulk, "
                              f"crystal (got {sources or 'none'})")
        if "file" in phase:
            if not read_files:
                if not Path(phase["file"]).is_file():
                    raise ConfigError(f"config key 'phases.{name}.file': no such file "
                                      f"{phase['file']}")
                continue
            unit = _read_structure(phase["file"], f"phases.{name}.file")
            unit.pbc = True
        else:
            bulk_args = phase.get("bulk", {})
            if bulk_args.get("crystalstructure") not in (None, *BULK_STRUCTURES):
                raise ConfigError(f"config key 'phases.{name}.bulk.crystalstructure': unknown "
                                  f"structure {bulk_args['crystalstructure']!r}; ase.build.bulk "
                                  f"knows {', '.join(BULK_STRUCTURES)}")
            try:
                symbols = _phase_symbols(phase)
            except (ValueError, KeyError) as err:
                raise ConfigError(f"config key 'phases.{name}.bulk.name': not a chemical formula "
                                  f"({err})") from None
            if not symbols <= set(elements):
                raise ConfigError(f"config key 'phases.{name}': species "
                                  f"{sorted(symbols - set(elements))} are not in config key "
                                  f"'elements' {elements}")
            try:
                unit = build_phase(name, phase)
            except Exception as err:     # ase.build.bulk / ase.spacegroup.crystal refused it
                raise ConfigError(f"config key 'phases.{name}.{sources[0]}': "
                                  f"{type(err).__name__}: {err}") from None
        extra = sorted(set(unit.get_chemical_symbols()) - set(elements))
        if extra:
            where = f"phases.{name}" + (f".file' ({phase['file']})" if "file" in phase else "'")
            raise ConfigError(f"config key '{where}: species {extra} are not in config key "
                              f"'elements' {elements}")
        src = f" of {phase['file']}" if "file" in phase else ""
        d_unit, _ = min_distance(unit)
        if d_unit < OVERLAP_DISTANCE:
            raise ConfigError(f"config key 'phases.{name}{'.file' if src else ''}': atoms "
                              f"{d_unit:.3f} Å apart in the unit cell{src} (overlapping sites; "
                              f"the smallest allowed is {OVERLAP_DISTANCE} Å)")
        try:
            displace(unit, name, **phase["displacements"])    # checks min_distance_fraction
        except ValueError as err:
            raise ConfigError(str(err)) from None


def _check_valid_data(path: str, elements: list) -> None:
    """valid_data is readable, labelled and finite (NaN would end in summary.json)."""
    import numpy as np

    from mtplib.io import read_dataset
    key = "validation.valid_data"
    if not Path(path).is_file():
        raise ConfigError(f"config key '{key}': no such file {path}")
    try:
        images = read_dataset(path, species=list(elements))
    except Exception as err:
        raise ConfigError(f"config key '{key}': cannot read {path} "
                          f"({type(err).__name__}: {err})") from None
    if not images:
        raise ConfigError(f"config key '{key}': {path} holds no configurations")
    for k, atoms in enumerate(images):
        extra = sorted(set(atoms.get_chemical_symbols()) - set(elements))
        if extra:
            raise ConfigError(f"config key '{key}': {path} configuration {k} has species "
                              f"{extra}, not in config key 'elements' {elements}")
        try:
            values = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
        except Exception:
            raise ConfigError(f"config key '{key}': {path} configuration {k} has no energy "
                              "and forces (labelled data needed)") from None
        for what, value in values.items():
            if not np.all(np.isfinite(value)):
                raise ConfigError(f"config key '{key}': {path} configuration {k} has a "
                                  f"non-finite {what} (NaN or inf)")


def _check_selection_weights(al: dict) -> None:
    """selection_weights: not all zero, and site-energy rows exactly in neighbourhood mode."""
    from mtplib.active import ActiveSetError, SelectionWeights
    given = {k: v for k, v in (al.get("selection_weights") or {}).items() if v is not None}
    if not given:
        return
    key = "config key 'active_learning.selection_weights'"
    try:
        weights = SelectionWeights.of(given, al["selection_mode"], where=key)
    except ActiveSetError as err:
        raise ConfigError(str(err)) from None
    if weights.mode != al["selection_mode"]:
        need = "> 0" if al["selection_mode"] == "neighborhood" else "0"
        raise ConfigError(f"{key} = {given}: site_energy must be {need} with "
                          f"'active_learning.selection_mode' = {al['selection_mode']!r}")


def _check_fidelity_stages(config: dict) -> None:
    """Stage names unique, each reference a known code for the elements, two stages at least,
    and no committee criterion (its members are stage 3's, fitted to the first reference)."""
    from mtplib.labeling.registry import check_elements

    stages = config.get("fidelity_stages") or []
    if not stages:
        return
    names = [s["name"] for s in stages]
    if len(stages) < 2:
        raise ConfigError(f"config key 'fidelity_stages': {len(stages)} stage given; give two "
                          "or more (cheap first), or none")
    if len(set(names)) != len(names):
        raise ConfigError(f"config key 'fidelity_stages': stage names {names} are not unique")
    if stages[0]["sparsify"]:
        raise ConfigError(f"config key 'fidelity_stages[{names[0]}].sparsify': the first stage "
                          "has no previous training set to sparsify; set it on a later stage")
    for stage in stages:
        try:
            check_elements(stage["reference"]["name"], config["elements"])
        except ValueError as err:
            raise ConfigError(f"config key 'fidelity_stages[{stage['name']}].reference': "
                              f"{err}") from None
    cc = config["active_learning"]["committee_criterion"]
    if cc["enabled"] or cc["only"]:
        raise ConfigError("config keys 'fidelity_stages' and 'active_learning."
                          "committee_criterion': the committee is not refitted per stage; "
                          "use one of them")


# What a Γ-only reference gets wrong in a small cell (GFN1-xTB, monoclinic HfO2 at its ideal
# positions, energy per atom above the 96-atom cell's; the 216-atom cell agrees to 1 meV).
GAMMA_ONLY_EVIDENCE = ("monoclinic HfO2 with GFN1-xTB: 12 atoms 0.62 eV/atom above 96, "
                       "a 72-atom cell 8.5 Å across still 0.03")


def _gamma_cells(config: dict, read_files: bool) -> tuple[list, list]:
    """The periodic cells the workflow will label whose size the config fixes, as
    (config key, what, cell heights (Å), how to enlarge it given a threshold): the phases'
    displaced supercells and the active-learning starts (labelled by every reference), and
    (second list) the validation cells that the final reference runs or relabels."""
    import numpy as np

    from mtplib.structures import amorphous_box_length, build_phase, cell_heights

    units = {}

    def unit_heights(name):
        if name not in units:
            phase = config["phases"][name]
            units[name] = (None if "file" in phase and not read_files
                           else cell_heights(build_phase(name, phase).cell))
        return units[name]

    def supercell(key, name, cells, note=""):
        h = unit_heights(name)
        if h is None:
            return None
        cells = [int(n) for n in cells]
        return (key, f"{cells}{note}", h * cells,
                lambda t: f"a supercell of {[max(n, math.ceil(t / x)) for n, x in zip(cells, h)]}")

    def amorphous(key, am):
        n = int(am["n_atoms"])
        length = amorphous_box_length(am["composition"], am["density"], n)
        return (key, f"{n} atoms at {am['density']:g} g/cm³", np.full(3, length),
                lambda t: f"n_atoms >= {math.ceil(n * (t / length) ** 3)}")

    labelled = []
    for name, phase in config["phases"].items():
        for k, cells in enumerate(phase["displacements"]["supercells"]):
            labelled.append(supercell(f"phases.{name}.displacements.supercells[{k}]", name, cells))
    for sc in config["active_learning"]["scenarios"]:
        start, where = sc["start"], f"active_learning.scenarios[{sc['name']}].start"
        names = [start["phase"]] if "phase" in start else start.get("phases", [])
        for name in names:
            note = f" (phase {name})" if "phases" in start else ""
            labelled.append(supercell(f"{where}.supercell", name, start["supercell"], note))
        if "amorphous" in start:
            labelled.append(amorphous(f"{where}.amorphous", start["amorphous"]))
        if "file" in start and read_files:
            atoms = _read_structure(start["file"], f"{where}.file")
            labelled.append((f"{where}.file", start["file"], cell_heights(atoms.cell, atoms.pbc),
                             lambda t: "a larger cell"))
    validation = []
    for sc in config["validation"]["scenarios"]:
        where, ref = f"validation.scenarios[{sc['name']}]", sc["reference"]
        runs = []          # the reference MD's start, then the MTP run's (frames relabelled)
        if ref.get("enabled", True):
            runs.append("reference." if ref.get("supercell") or ref.get("amorphous") else "")
        if config["validation"]["md_force_frames"] > 0:
            runs.append("")
        for prefix in dict.fromkeys(runs):
            if "phase" in sc:
                cells = ref["supercell"] if prefix else sc["supercell"]
                validation.append(supercell(f"{where}.{prefix}supercell", sc["phase"], cells))
            else:
                am = ref["amorphous"] if prefix else sc["amorphous"]
                validation.append(amorphous(f"{where}.{prefix}amorphous", am))
    return [c for c in labelled if c], [c for c in validation if c]


def gamma_cell_height(reference: dict) -> float:
    """The smallest cell height (Å) a reference section asks for: its gamma_only_min_height
    when its code samples only the Γ point with these kwargs, else 0 (any cell will do)."""
    from mtplib.labeling.registry import get_code

    threshold = float(reference["gamma_only_min_height"])
    if threshold <= 0 or not get_code(reference["name"]).samples_gamma_only(
            reference.get("kwargs")):
        return 0.0
    return threshold


def _check_gamma_cells(config: dict, read_files: bool) -> None:
    """A ConfigWarning per periodic cell thinner than ``gamma_only_min_height`` that a
    Γ-only reference (registry ``gamma_only``) labels: its energies and forces are not
    converged, and a training set mixing cell sizes cannot be fitted."""
    from mtplib.labeling.registry import get_code

    stages = config.get("fidelity_stages") or []
    references = ([(f"fidelity_stages[{s['name']}].reference", s["reference"]) for s in stages]
                  or [("reference", config["reference"])])
    final = references[-1][0]
    labelled, validation = None, None
    for where, reference in references:
        threshold = gamma_cell_height(reference)
        if not threshold:
            continue
        code = get_code(reference["name"])
        if labelled is None:
            labelled, validation = _gamma_cells(config, read_files)
        why = ("" if code.gamma_only is True
               else f", kpts = {(reference.get('kwargs') or {}).get('kpts')}")
        for key, what, heights, larger in labelled + (validation if where == final else []):
            smallest = float(min(heights))
            if smallest >= threshold:
                continue
            warnings.warn(
                f"config key '{key}' = {what}: cells {smallest:.1f} Å across; "
                f"{reference['name']} ('{where}'{why}) samples only the Gamma point, so "
                f"energies and forces of cells under {threshold:g} Å are not converged "
                f"({GAMMA_ONLY_EVIDENCE}); use {larger(threshold)} (>= {threshold:g} Å along "
                f"every axis), or set '{where}.gamma_only_min_height' to 0 to silence this",
                ConfigWarning, stacklevel=3)


def check_config(config: dict, read_files: bool = True) -> None:
    """Checks that a JSON schema cannot express; each message names the key (and the file).
    Cells too small for a Γ-only reference are a :class:`ConfigWarning` each, not an error.

    With ``read_files`` the files the config names are read (structures, valid_data), so
    that a corrupt CIF or a NaN in valid_data stops the workflow before any job runs."""
    from ase.data import atomic_numbers

    from mtplib.labeling.registry import BLAS_SETTING_HINT, check_elements, get_code

    elements = config["elements"]
    if len(set(elements)) != len(elements):
        raise ConfigError(f"config key 'elements': duplicate symbols in {elements}")
    unknown = [e for e in elements if e not in atomic_numbers or e == "X"]
    if unknown:
        raise ConfigError(f"config key 'elements': {unknown} are not chemical elements")
    try:
        get_code(config["reference"]["name"])
        check_elements(config["reference"]["name"], elements)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    _check_fidelity_stages(config)
    for key, reference in [("reference", config["reference"])] + [
            (f"fidelity_stages[{s['name']}].reference", s["reference"])
            for s in config.get("fidelity_stages") or []]:
        blas = reference.get("blas", "auto")
        if blas in ("auto", "bundled"):
            continue
        why = "no such file"
        if Path(blas).is_file():
            with open(blas, "rb") as fh:
                why = None if fh.read(4) == b"\x7fELF" else "not a shared library"
        if why:
            raise ConfigError(f"config key '{key}.blas' = {blas!r}: {why}; {BLAS_SETTING_HINT}")
    mtp = config["mtp"]
    if not mtp["min_dist"] < mtp["max_dist"]:
        raise ConfigError(f"config keys 'mtp.min_dist' = {mtp['min_dist']} and 'mtp.max_dist' = "
                          f"{mtp['max_dist']}: min_dist must be smaller than max_dist")
    phases = config["phases"]
    _check_phases(config, read_files)
    al = config["active_learning"]
    if not al["gamma_select"] <= al["gamma_break"]:
        raise ConfigError(f"config keys 'active_learning.gamma_select' = {al['gamma_select']} and "
                          f"'gamma_break' = {al['gamma_break']}: gamma_select must not be larger "
                          "(equal: each run contributes at most one configuration)")
    if al["gamma_max"] is not None and not al["gamma_max"] > al["gamma_select"]:
        raise ConfigError(f"config key 'active_learning.gamma_max' = {al['gamma_max']}: must be "
                          f"larger than gamma_select = {al['gamma_select']}")
    _check_selection_weights(al)
    for scenario in al["scenarios"]:
        start = scenario["start"]
        where = f"active_learning.scenarios[{scenario['name']}].start"
        for key in ("phase", "phases"):
            for phase in ([start[key]] if key == "phase" else start[key]) if key in start else []:
                if phase not in phases:
                    raise ConfigError(f"config key '{where}.{key}': unknown phase {phase!r}; "
                                      f"known: {sorted(phases)}")
        if "amorphous" in start:
            extra = sorted(set(start["amorphous"]["composition"]) - set(elements))
            if extra:
                raise ConfigError(f"config key '{where}.amorphous.composition': species {extra} "
                                  f"are not in config key 'elements' {elements}")
        if "file" in start and not read_files and not Path(start["file"]).is_file():
            raise ConfigError(f"config key '{where}.file': no such file {start['file']}")
        if "file" in start and read_files:
            atoms = _read_structure(start["file"], f"{where}.file")
            extra = sorted(set(atoms.get_chemical_symbols()) - set(elements))
            if extra:
                raise ConfigError(f"config key '{where}.file' ({start['file']}): species {extra} "
                                  f"are not in config key 'elements' {elements}")
        if scenario["ramp_steps"] > 0 and scenario["ramp_start"] is not None \
                and scenario["ensemble"] != "nvt":
            raise ConfigError(f"config key 'active_learning.scenarios[{scenario['name']}]"
                              f".ramp_steps': a temperature ramp needs ensemble nvt (Langevin), "
                              f"not {scenario['ensemble']!r}")
        if scenario["schedule"] and scenario["ramp_steps"] > 0:
            raise ConfigError(f"config key 'active_learning.scenarios[{scenario['name']}]"
                              f".schedule': give either a schedule or a temperature ramp "
                              f"(ramp_steps = {scenario['ramp_steps']}), not both")
        if scenario["schedule"] and scenario["equilibration"]["steps"] > 0:
            raise ConfigError(f"config key 'active_learning.scenarios[{scenario['name']}]"
                              f".schedule': give either a schedule or a damped start "
                              f"(equilibration.steps = {scenario['equilibration']['steps']}), "
                              "not both")
    validation = config["validation"]
    for scenario in validation["scenarios"]:
        for key, am in (("amorphous", scenario.get("amorphous")),
                        ("reference.amorphous", scenario["reference"].get("amorphous"))):
            extra = sorted(set(am["composition"]) - set(elements)) if am else []
            if extra:
                raise ConfigError(f"config key 'validation.scenarios[{scenario['name']}].{key}"
                                  f".composition': species {extra} are not in config key "
                                  f"'elements' {elements}")
        if "phase" not in scenario:
            if scenario["reference"].get("supercell"):
                raise ConfigError(f"config key 'validation.scenarios[{scenario['name']}]"
                                  ".reference.supercell': an amorphous start has no supercell; "
                                  "give reference.amorphous")
            continue
        if scenario["reference"].get("amorphous"):
            raise ConfigError(f"config key 'validation.scenarios[{scenario['name']}]"
                              ".reference.amorphous': the scenario starts from phase "
                              f"{scenario['phase']!r}; give reference.supercell")
        if scenario["phase"] not in phases:
            raise ConfigError(f"config key 'validation.scenarios[{scenario['name']}].phase': "
                              f"unknown phase {scenario['phase']!r}; known: {sorted(phases)}")
    if validation["valid_data"]:
        if read_files:
            _check_valid_data(validation["valid_data"], elements)
        elif not Path(validation["valid_data"]).is_file():
            raise ConfigError(f"config key 'validation.valid_data': no such file "
                              f"{validation['valid_data']}")
    _check_gamma_cells(config, read_files)


# ---- stage-2 chunks (known before stage 1 runs) -----------------------------------------------
def n_structures(phase: dict) -> int:
    """Number of displaced structures stage 1 writes for one phase."""
    disp = phase["displacements"]
    return len(disp["supercells"]) * disp["structures_per_supercell"]


def n_chunks(phase: dict, chunk_size: int) -> int:
    """Number of labelling chunks of one phase."""
    return max(1, math.ceil(n_structures(phase) / chunk_size))


def chunk_indices(n: int, chunk_size: int, chunk: int) -> range:
    """Indices of chunk ``chunk`` when ``n`` structures are cut in ``chunk_size`` pieces."""
    if not 0 <= chunk < max(1, math.ceil(n / chunk_size)):
        raise IndexError(f"chunk {chunk} out of range for {n} structures / chunk_size {chunk_size}")
    return range(chunk * chunk_size, min(n, (chunk + 1) * chunk_size))
