#!/usr/bin/env python3
"""select_add with B A^-1 kept by the rank-1 update against its full recompute after every
swap, on the selections of a finished active-learning run.

Protocol (fixed before the first run): for every iteration k of RESULTS_DIR/al, the pool that
al_select saw (iter_k/candidates.extxyz, less the configurations closer than min_dist) is
selected from against the active set of the potential that graded it (iter_{k-1}, or the
loop's start for k = 0) with the run's max_select, twice in the same process and in
alternating order: once as the library does it now (run_swaps(checked=True): B A^-1 by the
rank-1 update, recomputed every refresh_every swaps and before convergence is accepted), once
with refresh_every = 1 (recomputed after every swap: the library before this change).
Reported per iteration: candidates, swaps, whether the two select the same configurations, and
the CPU time of each and their ratio.

    python benchmarks/bench_select_update.py RESULTS_DIR [--max-select 50] [--iterations 0 3] [--species Hf O]
"""
import argparse
import functools
import time
from pathlib import Path

from ase.io import read

import mtplib.active.select as select_module
from mtplib import MTPotential
from mtplib.active import ActiveSet
from mtplib.analysis.errors import min_distance


def timed_select(aset, pool, max_select, full_recompute):
    run_swaps = select_module.run_swaps
    if full_recompute:
        select_module.run_swaps = functools.partial(run_swaps, refresh_every=1)
    try:
        start = time.process_time()
        sel = select_module.select_add(aset, pool, max_count=max_select)
        return sel, time.process_time() - start
    finally:
        select_module.run_swaps = run_swaps


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", type=Path)
    p.add_argument("--max-select", type=int, default=50)
    p.add_argument("--iterations", type=int, nargs="*")
    p.add_argument("--species", nargs="*", help="element of each MLIP type (the config's "
                   "elements)")
    args = p.parse_args()
    al = args.results / "al"
    iterations = args.iterations if args.iterations else sorted(
        int(d.name.split("_")[1]) for d in al.glob("iter_*"))
    species = args.species
    print("| iteration | candidates | swaps | same selection | rank-1 CPU s | recompute CPU s | ratio |")
    print("|---|---|---|---|---|---|---|")
    for k in iterations:
        prev = al / f"iter_{k - 1:03d}"
        potential, state = ((prev / "potential.mtp", prev / "potential.als.npz") if k > 0 else
                            (args.results / "fit" / "best.mtp", al / "start" / "best.als.npz"))
        pot = MTPotential.load(potential, species=species)
        pool = [a for a in read(al / f"iter_{k:03d}" / "candidates.extxyz", ":")
                if min_distance(a)[0] >= pot.min_dist]
        if not pool:
            continue
        results = {}
        for full in ((False, True) if k % 2 == 0 else (True, False)):
            aset = ActiveSet.load(state, pot)
            results[full] = timed_select(aset, pool, args.max_select, full)
        (new, t_new), (old, t_old) = results[False], results[True]
        print(f"| {k} | {len(pool)} | {new.swaps} / {old.swaps} | "
              f"{'yes' if new.selected == old.selected else 'NO'} | {t_new:.1f} | {t_old:.1f} | "
              f"{t_old / t_new:.2f} |", flush=True)


if __name__ == "__main__":
    main()
