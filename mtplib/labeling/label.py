"""Label structures with the reference calculator, resumably.

Every finished configuration (labelled or failed) is appended and fsynced to a
partial file next to its output; a rerun after a crash (even ``kill -9``) skips
the indices found there. Only when the whole chunk is done are the partial
files renamed (atomically) to the outputs.

Under MPI every rank runs the calculator (DFT codes parallelise over the world
communicator) and only rank 0 touches files.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from .frames import append_frame, read_complete_frames

STANDARD_RESULTS = {"energy", "free_energy", "forces", "stress", "energies", "stresses"}


class NonFiniteResult(RuntimeError):
    """The calculator returned NaN or inf."""


def partial_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(f".{output.name}.partial")


def compute_labels(atoms: Atoms, calc) -> Atoms:
    """Energy, forces and (for periodic cells) stress of ``atoms`` as a labelled copy.

    Raises whatever the calculator raises, or :class:`NonFiniteResult`.
    Extra scalar results of the calculator (e.g. an MPI size) go to ``info``.
    """
    work = atoms.copy()
    work.calc = calc
    energy = work.get_potential_energy()
    forces = work.get_forces()
    stress = None
    if work.pbc.all() and "stress" in getattr(calc, "implemented_properties", ()):
        stress = work.get_stress()
    for key, value in (("energy", energy), ("forces", forces), ("stress", stress)):
        if value is not None and not np.all(np.isfinite(value)):
            raise NonFiniteResult(f"non-finite {key} from the reference calculator")
    labelled = atoms.copy()
    for key, value in getattr(calc, "results", {}).items():
        if key not in STANDARD_RESULTS and np.ndim(value) == 0:
            labelled.info[key] = value.item() if hasattr(value, "item") else value
    labelled.calc = SinglePointCalculator(labelled, energy=energy, forces=forces, stress=stress)
    return labelled


def _key(atoms: Atoms) -> tuple:
    return (atoms.info.get("phase"), int(atoms.info["index"]))


def _same_structure(a: Atoms, b: Atoms) -> bool:
    return (len(a) == len(b) and (a.numbers == b.numbers).all()
            and np.allclose(a.cell.array, b.cell.array, atol=1e-6)
            and np.allclose(a.positions, b.positions, atol=1e-6))


def _resumable(frames: list[Atoms], partials, log) -> set:
    """Keys of the structures already finished in the partial files.

    A partial file left by an older run on different structures (the config
    changed in between) is discarded rather than trusted.
    """
    wanted = {_key(a): a for a in frames}
    finished = []
    for path in partials:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        finished += read_complete_frames(path)
    stale = [a for a in finished if _key(a) not in wanted or not _same_structure(a, wanted[_key(a)])]
    if stale:
        log(f"discarding partial results: {len(stale)} do not match the input structures")
        finished = []
        for path in partials:
            Path(path).unlink(missing_ok=True)
    for path in partials:
        Path(path).touch()
    if finished:
        log(f"resuming: {len(finished)} structure(s) already finished")
    return {_key(a) for a in finished}


def label_structures(
    frames: list[Atoms],
    make_calculator,
    output: str | Path,
    failed_output: str | Path,
    retries: int = 2,
    comm=None,
    log=print,
) -> dict:
    """Label ``frames`` into ``output``; failures (after ``retries``) into ``failed_output``.

    ``make_calculator()`` returns a fresh calculator; it is called once at the
    start and again after every failed attempt. ``comm`` is an MPI communicator
    or None. Returns counts: labelled, failed, retried, skipped (resumed).
    """
    rank = comm.Get_rank() if comm is not None else 0
    part, failed_part = partial_path(output), partial_path(failed_output)
    done = set()
    if rank == 0:
        done = _resumable(frames, (part, failed_part), log)
    if comm is not None:
        done = comm.bcast(done, root=0)
    stats = {"labelled": 0, "failed": 0, "retried": 0, "skipped": 0}
    calc = make_calculator()
    for atoms in frames:
        if _key(atoms) in done:
            stats["skipped"] += 1
            continue
        reason, result = None, None
        for attempt in range(1, retries + 2):
            t0 = time.perf_counter()
            try:
                result, reason = compute_labels(atoms, calc), None
            except Exception as err:  # SCF non-convergence, crashes, NaN: all retried
                result, reason = None, f"{type(err).__name__}: {err}"
            if comm is not None:  # rank 0's outcome decides for every rank
                reason = comm.bcast(reason, root=0)
            if reason is None:
                break
            log(f"index {atoms.info['index']}: attempt {attempt} failed: {reason}")
            calc = make_calculator()  # a fresh calculator drops any broken state
        if rank == 0:
            if reason is None:
                result.info["label_attempts"] = attempt
                append_frame(part, result)
            else:
                failed = atoms.copy()
                failed.info["failure_reason"] = reason
                failed.info["label_attempts"] = attempt
                append_frame(failed_part, failed)
        stats["labelled" if reason is None else "failed"] += 1
        stats["retried"] += attempt > 1
        status = "ok" if reason is None else "FAILED"
        log(f"index {atoms.info['index']}: {status} after {attempt} attempt(s), "
            f"{time.perf_counter() - t0:.2f} s")
    if rank == 0:
        os.replace(part, output)
        os.replace(failed_part, failed_output)
    if comm is not None:
        comm.Barrier()
    return stats


def mpi_world():
    """MPI.COMM_WORLD when launched under MPI with more than one rank, else None."""
    if not any(k in os.environ for k in ("PMI_SIZE", "PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS")):
        return None
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    return comm if comm.Get_size() > 1 else None


def run_mpi_safe(entry) -> int:
    """Run ``entry()``; under MPI an exception on any rank aborts the whole world
    (instead of leaving the other ranks blocked in a collective forever)."""
    try:
        return entry()
    except BaseException:
        comm = mpi_world()
        if comm is None:
            raise
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        comm.Abort(1)
        raise
