#!/usr/bin/env python3
"""Selection from an underdetermined active set: the hull loop's first iteration (issue 22).

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python benchmarks/bench_select_hull.py [--candidates 100]

The Ag-Pd pool of bench_hull.py (fcc, bcc, hcp up to 7 atoms), its 18 one-atom EMT cells as
the training set of a level-16 potential (222 parameters: 204 virtual rows remain), the pool
relaxed until gamma >= 2, then `select_add` over the first --candidates stopped
configurations: prints how many were selected, the swaps, the swap checks (`_confirm_swap`,
an LU each) and how many of those were refused, and the CPU seconds of the selection.
Run it with PYTHONPATH at two checkouts to compare them.
"""
import argparse
import importlib
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_hull import initial_training  # noqa: E402

from mtplib.active.grade import ActiveSet  # noqa: E402
from mtplib.active.md import Thresholds  # noqa: E402
from mtplib.active.pool import PoolSettings, enumerate_pool  # noqa: E402
from mtplib.active.relax import relax_pool  # noqa: E402
from mtplib.active.select import select_add  # noqa: E402
from mtplib.potential import MTPotential  # noqa: E402
from mtplib.training import fit  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", type=int, default=100)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    pool = enumerate_pool(PoolSettings(elements=("Ag", "Pd"), lattices=("fcc", "bcc", "hcp"),
                                       max_atoms=7))
    train = initial_training(pool)
    pot = MTPotential.from_level(16, ["Ag", "Pd"], min_dist=2.0, max_dist=5.0,
                                 radial_basis_size=8)
    pot = fit(train, pot, max_iter=20, seed=0, log=None)
    aset = ActiveSet.from_training(pot, train, mode="configuration")
    relaxed = relax_pool(pot, pool, active_set=aset,
                         thresholds=Thresholds(gamma_select=2.0, gamma_break=2.0))
    stopped = [r.atoms for r in relaxed if r.status == "stopped"][:args.candidates]
    maxvol = importlib.import_module("mtplib.active.maxvol")
    checks = [0, 0]
    confirm = maxvol._confirm_swap

    def counted(*a, **k):
        ok = confirm(*a, **k)
        checks[0] += 1
        checks[1] += not ok
        return ok

    maxvol._confirm_swap = counted
    t = time.process_time()
    sel = select_add(aset, stopped)
    cpu = time.process_time() - t
    print(f"{len(stopped)} stopped candidates: {len(sel.selected)} selected {sel.selected}, "
          f"{sel.swaps} swaps, {checks[0]} swap checks ({checks[1]} refused), {cpu:.1f} CPU-s")


if __name__ == "__main__":
    main()
