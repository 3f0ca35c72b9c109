"""Label structures with the reference calculator, resumably.

Every finished configuration (labelled or failed) is appended and fsynced to a
partial file next to its output; a rerun after a crash (even ``kill -9``) skips
the indices found there. Only when the whole chunk is done are the partial
files renamed (atomically) to the outputs.

Under MPI every rank runs the calculator (DFT codes parallelise over the world
communicator) and only rank 0 touches files.

A per-calculation ``timeout`` (SIGALRM in the main thread) records a hanging structure as
failed with reason ``timeout`` and goes on; a per-chunk lock file (``fcntl.flock``) makes a
second writer wait, so two runs in one folder can cost time but never labels.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.singlepoint import SinglePointCalculator

from .frames import append_frame, read_complete_frames, read_frames, write_frames_atomic

STANDARD_RESULTS = {"energy", "free_energy", "forces", "stress", "energies", "stresses"}


class NonFiniteResult(RuntimeError):
    """The calculator returned NaN or inf."""


class LabelTimeout(Exception):
    """A reference calculation ran past ``timeout`` seconds."""


TIMEOUT_REASON = "timeout"


def partial_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(f".{output.name}.partial")


def lock_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(f".{output.name}.lock")


@contextlib.contextmanager
def chunk_lock(output: str | Path, log=print):
    """Hold an exclusive ``fcntl.flock`` on the chunk's lock file; a second process on the same
    chunk (two runs in one folder after a forced ``--unlock``) waits here, and says so."""
    path = lock_path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting: another process is labelling {output} (lock {path}); two workflow "
                "runs share this folder")
            fcntl.flock(fh, fcntl.LOCK_EX)
            log(f"lock {path} acquired")
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def time_limit(seconds: float | None):
    """Raise :class:`LabelTimeout` in the main thread after ``seconds`` (None: no limit).

    SIGALRM interrupts Python code (and sleeps, subprocess waits); a code blocked inside a C
    call is interrupted when that call returns to Python."""
    if not seconds:
        yield
        return
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("reference.timeout needs the main thread (SIGALRM)")

    def expire(signum, frame):
        raise LabelTimeout(f"no result after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _close(calc) -> None:
    """Drop a calculator after a timeout or failure (closes sockets/subprocesses if it can)."""
    close = getattr(calc, "close", None)
    if callable(close):
        with contextlib.suppress(Exception):
            close()


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


class ReferenceFailed(RuntimeError):
    """The reference failed on one configuration after every retry (or timed out)."""


class RetryingCalculator(Calculator):
    """The reference as labelling runs it, for MD and property calculations (validation):
    every calculation gets ``timeout`` seconds and ``retries`` more attempts, each with a
    fresh calculator from ``make_calculator()``; then :class:`ReferenceFailed`. ``failures``
    lists every failed attempt's reason."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, make_calculator, retries: int = 2, timeout: float | None = None,
                 log=print, **kwargs):
        super().__init__(**kwargs)
        self.make_calculator, self.retries, self.timeout, self.log = (
            make_calculator, retries, timeout, log)
        self.reference = make_calculator()
        self.failures: list[str] = []

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        want_stress = "stress" in properties
        for attempt in range(1, self.retries + 2):
            try:
                with time_limit(self.timeout):
                    labelled = compute_labels(self.atoms, self.reference)
                if want_stress and labelled.calc.results.get("stress") is None:
                    raise RuntimeError("the reference gives no stress")
                self.results = {k: v for k, v in labelled.calc.results.items() if v is not None}
                self.results["free_energy"] = self.results["energy"]
                return
            except Exception as err:  # SCF non-convergence, crashes, NaN, timeout
                reason = (TIMEOUT_REASON if isinstance(err, LabelTimeout)
                          else f"{type(err).__name__}: {err}")
                self.failures.append(reason)
                self.log(f"reference: attempt {attempt} failed: {reason}")
                _close(self.reference)
                self.reference = self.make_calculator()
                if reason == TIMEOUT_REASON:
                    break
        raise ReferenceFailed(f"reference failed after {attempt} attempt(s): {reason}")


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


def _finished_elsewhere(frames, output, failed_output, log) -> bool:
    """Whether another process has already finished this chunk (its outputs cover every
    structure): the second of two runs in one folder then has nothing to do."""
    if not (Path(output).is_file() and Path(failed_output).is_file()):
        return False
    wanted = {_key(a): a for a in frames}
    finished = read_frames([output, failed_output])
    if ({_key(a) for a in finished} == set(wanted)
            and all(_same_structure(a, wanted[_key(a)]) for a in finished)):
        log(f"{output}: already labelled by another process; nothing to do")
        return True
    return False


def label_structures(
    frames: list[Atoms],
    make_calculator,
    output: str | Path,
    failed_output: str | Path,
    retries: int = 2,
    comm=None,
    log=print,
    timeout: float | None = None,
) -> dict:
    """Label ``frames`` into ``output``; failures (after ``retries``) into ``failed_output``.

    ``make_calculator()`` returns a fresh calculator; it is called once at the
    start and again after every failed attempt. ``comm`` is an MPI communicator
    or None. A calculation running past ``timeout`` seconds is not retried: the
    structure is failed with reason ``timeout`` and the chunk goes on. Rank 0 holds
    the chunk's lock file while it works. Returns counts: labelled, failed, retried,
    skipped (resumed), timeouts.
    """
    rank = comm.Get_rank() if comm is not None else 0
    with chunk_lock(output, log) if rank == 0 else contextlib.nullcontext():
        return _label_locked(frames, make_calculator, output, failed_output, retries, comm, log,
                             timeout, rank)


def _label_locked(frames, make_calculator, output, failed_output, retries, comm, log, timeout,
                  rank):
    part, failed_part = partial_path(output), partial_path(failed_output)
    stats = {"labelled": 0, "failed": 0, "retried": 0, "skipped": 0, "timeouts": 0}
    done, finished = set(), False
    if rank == 0:
        finished = (not part.exists() and not failed_part.exists()
                    and _finished_elsewhere(frames, output, failed_output, log))
        if not finished:
            done = _resumable(frames, (part, failed_part), log)
    if comm is not None:
        finished, done = comm.bcast((finished, done), root=0)
    if finished:
        stats["skipped"] = len(frames)
        return stats
    calc = make_calculator()
    for atoms in frames:
        if _key(atoms) in done:
            stats["skipped"] += 1
            continue
        reason, result = None, None
        for attempt in range(1, retries + 2):
            t0 = time.perf_counter()
            try:
                with time_limit(timeout):
                    result, reason = compute_labels(atoms, calc), None
            except LabelTimeout as err:
                result, reason = None, TIMEOUT_REASON
                log(f"index {atoms.info['index']}: {err} (reference.timeout)")
            except Exception as err:  # SCF non-convergence, crashes, NaN: all retried
                result, reason = None, f"{type(err).__name__}: {err}"
            if comm is not None:  # rank 0's outcome decides for every rank
                reason = comm.bcast(reason, root=0)
            if reason is None:
                break
            log(f"index {atoms.info['index']}: attempt {attempt} failed: {reason}")
            _close(calc)
            calc = make_calculator()  # a fresh calculator drops any broken state
            if reason == TIMEOUT_REASON:   # a hang is not retried: it would hang again
                stats["timeouts"] += 1
                break
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


def retry_failures(output: str | Path, failed_output: str | Path, make_calculator,
                   retries: int = 2, comm=None, log=print, timeout: float | None = None) -> dict:
    """Relabel the failed structures of a finished chunk (after the reference was fixed): the
    labelled structures are kept, only the failures are computed again; both files are
    rewritten atomically (labels first, so a crash in between loses nothing and a rerun
    does not label a structure twice). Returns the counts of :func:`label_structures`."""
    output, failed_output = Path(output), Path(failed_output)
    rank = comm.Get_rank() if comm is not None else 0
    with chunk_lock(output, log) if rank == 0 else contextlib.nullcontext():
        failed, labelled = [], []
        if rank == 0:
            labelled = read_frames([output])
            keys = {_key(a) for a in labelled}
            failed = [a for a in read_frames([failed_output]) if _key(a) not in keys]
            for atoms in failed:
                for key in ("failure_reason", "label_attempts"):
                    atoms.info.pop(key, None)
            log(f"{output}: retrying {len(failed)} failed structure(s), keeping "
                f"{len(labelled)} labelled")
        if comm is not None:
            failed = comm.bcast(failed, root=0)
        if not failed:
            return {"labelled": 0, "failed": 0, "retried": 0, "skipped": 0, "timeouts": 0}
        tmp = output.with_name(f".{output.name}.retry")
        tmp_failed = failed_output.with_name(f".{failed_output.name}.retry")
        stats = _label_locked(failed, make_calculator, tmp, tmp_failed, retries, comm, log,
                              timeout, rank)
        if rank == 0:
            new = read_frames([tmp])
            write_frames_atomic(output, sorted(labelled + new, key=lambda a: (
                str(a.info.get("phase")), int(a.info["index"]))))
            write_frames_atomic(failed_output, read_frames([tmp_failed]))
            tmp.unlink()
            tmp_failed.unlink()
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
