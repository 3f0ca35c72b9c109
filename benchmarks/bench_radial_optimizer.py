#!/usr/bin/env python3
"""Levenberg-Marquardt against L-BFGS-B over the radial coefficients, from the same start.

A common start is made by `--start-iter` L-BFGS-B iterations from seed 0 (the mid-fit point
where a long fit spends its time); then each optimiser continues from it for `--max-iter`
iterations, and the loss is printed against the CPU-s spent. The summary gives the CPU-s
each needs to reach the lower of the two final losses (the ratio is the figure: both run
in this process on the same data).

    python benchmarks/bench_radial_optimizer.py                       # Cu EMT set, level 16
    python benchmarks/bench_radial_optimizer.py --mlearn Si --fraction 0.1   # level 24
"""
import argparse
import time
import warnings

import numpy as np
from ase.io import read

from bench_mlearn import DATA as MLEARN, LEVELS
from bench_train import data_dir
from mtplib.potential import MTPotential
from mtplib.training import fit
from mtplib.training.optimize import DEFAULT_WEIGHTS, radial_subset


def run(train, start, optimizer, max_iter, weights):
    hist, times = [], []
    c0 = time.process_time()
    fit(train, start, weights=weights, warm_start=True, max_iter=max_iter, tol=0.0,
        radial_optimizer=optimizer, history=hist,
        log=lambda m: times.append(time.process_time() - c0) if m.startswith("iter") else None)
    return np.array(times), np.array([h["loss"] for h in hist]), np.array([h["force_rmse"] for h in hist])


def cpu_to_reach(times, losses, target):
    hit = np.flatnonzero(losses <= target)
    return float(times[hit[0]]) if len(hit) else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=None, help="Cu EMT set directory (made if absent)")
    ap.add_argument("--mlearn", default=None, help="use ../shared/data/mlearn/<El>/train.extxyz")
    ap.add_argument("--level", type=int, default=None,
                    help="default: 16 (Cu EMT), the published level (mlearn)")
    ap.add_argument("--fraction", type=float, default=1.0,
                    help="use this seeded fraction of the training configurations")
    ap.add_argument("--start-iter", type=int, default=30)
    ap.add_argument("--max-iter", type=int, default=15)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    if args.mlearn:
        d = MLEARN / args.mlearn
        if not (d / "train.extxyz").exists():
            print(f"no data under {d}; skipped")
            return
        train = read(d / "train.extxyz", ":")
        ref = MTPotential.load(d / "published.mtp")
        args.level = args.level or LEVELS[args.mlearn]
        init = MTPotential.from_level(args.level, [args.mlearn], ref.min_dist, ref.max_dist,
                                      ref.radial_basis_size)
    else:
        train = read(data_dir(args.data) / "train.extxyz", ":")
        args.level = args.level or 16
        init = MTPotential.from_level(args.level, ["Cu"], 2.0, 5.0, 8)
    weights = DEFAULT_WEIGHTS
    if args.fraction < 1.0:
        train = [train[i] for i in radial_subset(len(train), args.fraction, 0)]
    n_atoms = sum(len(a) for a in train)
    c0 = time.process_time()
    start = fit(train, init, weights=weights, seed=0, max_iter=args.start_iter, tol=0.0, log=None)
    print(f"{len(train)} configurations ({n_atoms} atoms), level {args.level}, "
          f"{start.radial_coeffs.size} radial coefficients; common start: {args.start_iter} "
          f"L-BFGS-B iterations, {time.process_time() - c0:.1f} CPU-s", flush=True)
    out = {}
    for opt in ("lbfgs", "lm"):
        out[opt] = run(train, start, opt, args.max_iter, weights)
        t, loss, frmse = out[opt]
        print(f"\n{opt}: iteration, CPU-s, loss, F RMSE eV/Å")
        for k in range(len(t)):
            print(f"  {k + 1:3d} {t[k]:8.1f} {loss[k]:.6e} {frmse[k]:.5f}")
    target = max(out["lbfgs"][1][-1], out["lm"][1][-1])
    a, b = (cpu_to_reach(out[o][0], out[o][1], target) for o in ("lbfgs", "lm"))
    print(f"\nloss {target:.6e} (the higher final loss) reached after: L-BFGS-B {a:.1f} CPU-s, "
          f"LM {b:.1f} CPU-s; ratio L-BFGS-B / LM {a / b:.2f}")
    for o in ("lbfgs", "lm"):
        t, loss, frmse = out[o]
        print(f"{o:5s} final: loss {loss[-1]:.6e}, F RMSE {frmse[-1]:.5f} eV/Å after "
              f"{len(t)} iterations, {t[-1]:.1f} CPU-s")


if __name__ == "__main__":
    main()
