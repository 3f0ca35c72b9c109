# Input functions, wildcard constraints and config lookups shared by the rules.
import json
import re

from mtplib.workflow.config import n_chunks
from mtplib.workflow.reference import runs_python_under_mpi

PHASES = list(config["phases"])


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
    size = config["reference"]["chunk_size"]
    return [
        f"results/labels/{phase}/chunk_{k}{suffix}"
        for phase in PHASES
        for k in range(n_chunks(config["phases"][phase], size))
    ]


def python_launcher(wildcards, resources):
    """'{mpi} -n {tasks}' in front of python when the calculator runs in-process under MPI."""
    if resources.tasks > 1 and runs_python_under_mpi(config["reference"]["name"]):
        return f"{resources.mpi} -n {resources.tasks}"
    return ""


def command_prefix(wildcards, resources):
    """'{mpi} -n {tasks}' for codes driven through a command (espresso, vasp)."""
    if resources.tasks > 1 and not runs_python_under_mpi(config["reference"]["name"]):
        return f"{resources.mpi} -n {resources.tasks}"
    return ""


# ---- stage 3: seed-scanned fitting ----
from mtplib.workflow.fitting import seeds_of  # noqa: E402

SEEDS = seeds_of(config["fit"])


def fit_settings(wildcards):
    """The config sections a seed's fit needs, as one JSON argument."""
    return json.dumps({k: config[k] for k in ("elements", "mtp", "fit")})


def fit_launcher(wildcards, resources):
    return f"{resources.mpi} -n {resources.tasks}" if resources.tasks > 1 else ""
