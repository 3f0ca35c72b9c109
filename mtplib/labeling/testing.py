"""Reference calculators that misbehave on purpose, for testing a workflow's fault handling:
``reference.name: mtplib.labeling.testing:Cls``.

Each wraps ASE's EMT and adds one behaviour the workflow must handle.
"""

from __future__ import annotations

import os
import time

import numpy as np

from ase.calculators.emt import EMT


def _index(atoms) -> int:
    return int(atoms.info.get("index", -1))


class LoggingEMT(EMT):
    """EMT that appends the structure index to ``log_file`` on every call (and may sleep)."""

    def __init__(self, log_file: str, delay: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.log_file, self.delay = log_file, delay

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        with open(self.log_file, "a") as fh:
            fh.write(f"{_index(atoms)}\n")
            fh.flush()
            os.fsync(fh.fileno())
        time.sleep(self.delay)
        super().calculate(atoms, properties, system_changes)


class FailingEMT(EMT):
    """EMT that fails on every structure with ``index % every == 0`` or, with ``rate``, on
    that fraction of its calls (seeded; each new instance draws its own stream): a flaky
    reference, e.g. under MD, where structures have no index.

    ``mode='raise'`` raises like an SCF non-convergence; ``mode='nan'`` returns a
    NaN energy instead.
    """

    instances = 0

    def __init__(self, every: int = 4, mode: str = "raise", rate: float | None = None,
                 seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.every, self.mode, self.rate = every, mode, rate
        FailingEMT.instances += 1
        self.rng = np.random.default_rng([seed, FailingEMT.instances])

    def _fails(self, atoms) -> bool:
        if self.rate is not None:
            return bool(self.rng.random() < self.rate)
        return _index(atoms) % self.every == 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        super().calculate(atoms, properties, system_changes)
        if self._fails(atoms):
            if self.mode == "raise":
                raise RuntimeError(f"SCF did not converge for index {_index(atoms)} (test)")
            self.results["energy"] = float("nan")


class FlakyEMT(EMT):
    """EMT that fails on the first attempt at each structure, then succeeds (retry test)."""

    attempts: dict = {}

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        key = _index(atoms)
        FlakyEMT.attempts[key] = FlakyEMT.attempts.get(key, 0) + 1
        if FlakyEMT.attempts[key] == 1:
            raise RuntimeError("transient failure (test)")
        super().calculate(atoms, properties, system_changes)


class MPISizeEMT(EMT):
    """EMT that reports the MPI world it ran under (results -> ``info``)."""

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        from mpi4py import MPI

        super().calculate(atoms, properties, system_changes)
        comm = MPI.COMM_WORLD
        self.results["mpi_comm_size"] = comm.Get_size()
        # every rank computed: prove it by summing a per-rank 1 over the world
        self.results["mpi_ranks_computed"] = comm.allreduce(1)
        self.results["mpi_pids_distinct"] = len(set(comm.allgather(os.getpid())))




class HangingEMT(EMT):
    """EMT that hangs (sleeps ``hang_seconds``) on the structures whose index is in ``hang``:
    a reference calculation that never returns (reference.timeout test)."""

    def __init__(self, hang=(0,), hang_seconds: float = 3600.0, **kwargs):
        super().__init__(**kwargs)
        self.hang, self.hang_seconds = {int(i) for i in hang}, hang_seconds

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        if _index(atoms) in self.hang:
            time.sleep(self.hang_seconds)
        super().calculate(atoms, properties, system_changes)


class FixableEMT(LoggingEMT):
    """EMT that fails on every structure with ``index % every == 0`` until the file ``fixed``
    exists (a reference repaired outside the config: a licence, a pseudopotential, a node);
    logs every index it is asked to compute to ``log_file``."""

    def __init__(self, fixed: str, log_file: str, every: int = 3, **kwargs):
        super().__init__(log_file, **kwargs)
        self.fixed, self.every = fixed, every

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        super().calculate(atoms, properties, system_changes)
        if _index(atoms) % self.every == 0 and not os.path.exists(self.fixed):
            raise RuntimeError(f"reference broken for index {_index(atoms)} (test)")
