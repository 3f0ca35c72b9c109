#!/usr/bin/env python3
"""Bias or variance? The uniform arm's learning curve and fit-seed spread (EMT Cu).

For each level and each N, fits the uniform arm of tests/test_active_e2e.py (the 10 rattled
cells plus N - 10 EMT MD frames uniform in time, `uniform_arm`) cold with each fit seed and
scores it on the independent EMT MD runs (`independent_md`). Prints one JSON line per fit:
training loss, iterations, and [energy RMSE, largest energy error] (meV/atom) and force RMSE
(meV/Å) on the training set and on the test set.

Reading it: where the test RMSE stops falling with N and meets the training RMSE, the level is
bias-limited (the model, not the data, sets the error); the spread over fit seeds at fixed
data is the optimiser's share.

    NUMBA_NUM_THREADS=1 python benchmarks/bench_al_learning_curve.py --levels 8 --ns 15 20 30 45 60
"""
import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import test_active_e2e as e2e  # noqa: E402  (the procedure under test lives there)

from mtplib.active.testing import tiny_potential  # noqa: E402
from mtplib.training import fit  # noqa: E402


def errors(pot, images):
    """[energy RMSE, largest |energy error|] in meV/atom, force RMSE in meV/Å."""
    de, df = e2e.energy_force_errors(pot, images)
    return [round(float(np.sqrt(np.mean(de ** 2))), 4), round(float(np.abs(de).max()), 3),
            round(float(np.sqrt(np.mean(df ** 2))), 2)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-seed", type=int, default=0, help="seed of the EMT MD runs")
    ap.add_argument("--levels", type=int, nargs="+", default=[8])
    ap.add_argument("--ns", type=int, nargs="+", default=[15, 20, 30, 45, 60],
                    help="training set sizes (configurations, 10 of them the start cells)")
    ap.add_argument("--fit-seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--max-iter", type=int, default=e2e.FIT_MAX_ITER)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    test = e2e.independent_md(args.data_seed)
    for n in args.ns:
        train = e2e.uniform_arm(list(range(n)), args.data_seed)
        for level in args.levels:
            for fit_seed in args.fit_seeds:
                t0, history = time.perf_counter(), []
                pot = fit(train, tiny_potential(level), seed=fit_seed, max_iter=args.max_iter,
                          log=None, history=history)
                print(json.dumps(dict(level=level, n=n, fit_seed=fit_seed, data_seed=args.data_seed,
                                      loss=float(f"{history[-1]['loss']:.4g}"),
                                      iterations=len(history),
                                      train=errors(pot, train), test=errors(pot, test),
                                      wall_s=round(time.perf_counter() - t0, 1))), flush=True)


if __name__ == "__main__":
    main()
