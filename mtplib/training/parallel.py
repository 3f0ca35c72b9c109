"""Data parallelism over MPI ranks: a deterministic split of configurations and sum-reductions.

Without mpi4py, or in a single process, everything is serial and no MPI is imported.
"""
from __future__ import annotations

import os

import numpy as np

_MPI_ENV = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS", "PMIX_RANK")


def world_comm():
    """COMM_WORLD when launched under mpiexec with more than one rank, else None."""
    if not any(k in os.environ for k in _MPI_ENV):
        return None
    try:
        from mpi4py import MPI
    except ImportError:
        return None
    return MPI.COMM_WORLD if MPI.COMM_WORLD.Get_size() > 1 else None


class Reducer:
    """Rank, size, this rank's share of a list, and sums of arrays over ranks."""

    def __init__(self, comm="auto"):
        self.comm = world_comm() if comm == "auto" else comm
        self.rank = self.comm.Get_rank() if self.comm is not None else 0
        self.size = self.comm.Get_size() if self.comm is not None else 1

    @property
    def is_root(self):
        return self.rank == 0

    def share(self, items):
        """Contiguous block of items for this rank (fixed by the rank count only)."""
        n = len(items)
        return items[self.rank * n // self.size:(self.rank + 1) * n // self.size]

    def sum(self, *arrays):
        """Element-wise sums over ranks of float arrays/scalars (same shapes on all ranks)."""
        flat = [np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in arrays]
        if self.comm is None:
            out = flat
        else:
            buf = np.concatenate([f.ravel() for f in flat])
            # gather every rank's partial sums and add them in rank order: reproducible
            parts = np.empty((self.size, buf.size))
            self.comm.Allgather(buf, parts)
            total = parts[0].copy()
            for r in range(1, self.size):
                total += parts[r]
            out, pos = [], 0
            for f in flat:
                out.append(total[pos:pos + f.size].reshape(f.shape))
                pos += f.size
        return [o if np.ndim(a) else float(o[0]) for o, a in zip(out, arrays)]

    def ordered_sum(self, parts, shapes):
        """Sum of per-batch partial results in global batch order, bit-identical to the
        serial sum: rank r continues the running sum of ranks < r (a chain), the last rank
        broadcasts it. `parts`: this rank's list of tuples of arrays/scalars; `shapes`: the
        shape of each tuple member."""
        acc = [np.zeros(s) for s in shapes]
        sizes = [int(np.prod(s, dtype=np.int64)) for s in shapes]
        flat = np.zeros(sum(sizes))
        if self.comm is not None and self.rank > 0:
            self.comm.Recv(flat, source=self.rank - 1, tag=77)
            pos = 0
            for k, n in enumerate(sizes):
                acc[k] = flat[pos:pos + n].reshape(shapes[k]).copy()
                pos += n
        for part in parts:
            for k, x in enumerate(part):
                acc[k] += x
        if self.comm is not None:
            flat = np.concatenate([a.ravel() for a in acc])
            if self.rank < self.size - 1:
                self.comm.Send(flat, dest=self.rank + 1, tag=77)
            self.comm.Bcast(flat, root=self.size - 1)
            pos = 0
            for k, n in enumerate(sizes):
                acc[k] = flat[pos:pos + n].reshape(shapes[k])
                pos += n
        return [a if len(s) else float(a) for a, s in zip(acc, shapes)]

    def bcast(self, obj):
        return obj if self.comm is None else self.comm.bcast(obj, root=0)
