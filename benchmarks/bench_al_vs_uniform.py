#!/usr/bin/env python3
"""Active learning against uniform sampling of MD, per seed of the whole procedure (EMT Cu).

Runs the loop of tests/test_active_e2e.py (`active_learning`) from its 10 rattled cells, then
fits both arms (the active set, and the same 10 cells plus as many EMT MD frames sampled
uniformly in time) by the same seed scan and scores them on the independent EMT MD runs of
`independent_md`. Prints one JSON line per seed: training losses of every fit seed, energy
RMSE on the arm's own training set, over all test frames and per test trajectory, the largest
energy error (meV/atom) and the force RMSE (meV/Å). --level, --mode and --max-select override
the test module's LEVEL, MODE and MAX_SELECT (the same procedure at another setting).

    NUMBA_NUM_THREADS=1 python benchmarks/bench_al_vs_uniform.py --seeds 0 1 2 3 4 5 6
    NUMBA_NUM_THREADS=1 python benchmarks/bench_al_vs_uniform.py --level 12 --seeds 0
"""
import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import test_active_e2e as e2e  # noqa: E402  (the procedure under test lives there)

from mtplib.active.testing import emt_cells  # noqa: E402


def scores(pot, test):
    de, df = e2e.energy_force_errors(pot, test)
    per = len(test) // e2e.TEST_TRAJECTORIES
    return dict(energy_rmse=round(float(np.sqrt(np.mean(de ** 2))), 4),
                energy_rmse_per_trajectory=[round(float(np.sqrt(np.mean(de[k:k + per] ** 2))), 3)
                                            for k in range(0, len(de), per)],
                energy_max=round(float(np.abs(de).max()), 3),
                forces_rmse=round(float(np.sqrt(np.mean(df ** 2))), 3))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5, 6])
    ap.add_argument("--level", type=int, default=e2e.LEVEL, help="MTP level of every fit")
    ap.add_argument("--mode", default=e2e.MODE, help="active-set mode of the loop")
    ap.add_argument("--max-select", type=int, default=e2e.MAX_SELECT,
                    help="configurations selected per iteration")
    args = ap.parse_args()
    e2e.LEVEL, e2e.MODE, e2e.MAX_SELECT = args.level, args.mode, args.max_select
    warnings.simplefilter("ignore")
    for seed in args.seeds:
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            train, survived = e2e.active_learning(
                emt_cells(10, seed=seed, rattle=0.05, strain=0.01), Path(tmp), seed=seed)
        row = dict(seed=seed, level=e2e.LEVEL, mode=e2e.MODE, max_select=e2e.MAX_SELECT,
                   configurations=len(train), steps_survived=survived,
                   loop_s=round(time.perf_counter() - t0))
        test = e2e.independent_md(seed)
        for arm, images in (("active", train), ("uniform", e2e.uniform_arm(train, seed))):
            fits = [e2e._fit(images, seed=s) for s in e2e.FINAL_SEEDS]
            pot, _ = min(fits, key=lambda f: f[1])
            row[arm] = dict(training_losses=[float(f"{f[1]:.4g}") for f in fits],
                            training_energy_rmse=round(1e3 * e2e._energy_rmse(pot, images), 4),
                            **scores(pot, test))
        row["wall_s"] = round(time.perf_counter() - t0)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
