#!/usr/bin/env python3
"""Train MTPs on the mlearn DFT sets (Zuo et al. 2020) and compare test MAEs with the paper's.

Per element: level (Li 16, Ni/Cu/Mo 20, Si/Ge 24), cutoff and min_dist of the published MTP,
trained on train.extxyz only. Hyperparameters (stress weight x radial basis size) are chosen
by k-fold cross-validation on train.extxyz (short fits: --cv-iter), then a full fit
(--max-iter) is evaluated once on test.extxyz.

    python benchmarks/bench_mlearn.py --elements Li Mo Si [--max-iter 100] [--cv-iter 10]
"""
import argparse
import itertools
import time
import warnings
from pathlib import Path

import numpy as np
from ase.io import read

from mtplib.potential import MTPotential
from mtplib.training import fit

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mlearn"
LEVELS = {"Li": 16, "Ni": 20, "Cu": 20, "Mo": 20, "Si": 24, "Ge": 24}
PUBLISHED = {  # test MAE of the paper's MTPs: energy meV/atom, force eV/Å (data/README.md)
    "Ni": (0.48, 0.0140), "Cu": (0.41, 0.0069), "Li": (0.49, 0.0101),
    "Mo": (2.94, 0.0901), "Si": (2.31, 0.0560), "Ge": (1.79, 0.0465)}


def maes(pot, images):
    res = pot.evaluate_many(images)
    de = np.array([(r["energy"] - a.get_potential_energy()) / len(a) for r, a in zip(res, images)])
    df = np.concatenate([(r["forces"] - a.get_forces()).ravel() for r, a in zip(res, images)])
    return 1000 * float(np.abs(de).mean()), float(np.abs(df).mean())


def cross_validate(train, init_for, grid, folds, max_iter, seed=0):
    """Mean validation score (energy MAE/published + force MAE/published) per grid point."""
    order = np.random.default_rng(seed).permutation(len(train))
    parts = np.array_split(order, folds)
    scores = {}
    for w_s, rb in grid:
        vals = []
        for k in range(folds):
            val = [train[i] for i in parts[k]]
            fit_set = [train[i] for j in range(folds) if j != k for i in parts[j]]
            pot = fit(fit_set, init_for(rb), weights=(1.0, 0.01, w_s), max_iter=max_iter,
                      seed=seed, log=None)
            vals.append(maes(pot, val))
        scores[(w_s, rb)] = tuple(np.mean(vals, axis=0))
    return scores


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--elements", nargs="+", default=["Li", "Mo", "Si"])
    ap.add_argument("--max-iter", type=int, default=100)
    ap.add_argument("--cv-iter", type=int, default=10)
    ap.add_argument("--folds", type=int, default=2)
    ap.add_argument("--stress-weights", nargs="+", type=float, default=[1e-3, 1e-5])
    ap.add_argument("--radial-basis-sizes", nargs="+", type=int, default=[8, 10])
    ap.add_argument("--data", default=str(DATA))
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    rows = []
    for el in args.elements:
        d = Path(args.data) / el
        if not (d / "train.extxyz").exists():
            print(f"{el}: no data under {d}; skipped")
            continue
        train = read(d / "train.extxyz", ":")
        test = read(d / "test.extxyz", ":")
        ref = MTPotential.load(d / "published.mtp")

        def init_for(rb, el=el, ref=ref):
            return MTPotential.from_level(LEVELS[el], [el], ref.min_dist, ref.max_dist, rb)

        t0 = time.perf_counter()
        c0 = time.process_time()
        grid = list(itertools.product(args.stress_weights, args.radial_basis_sizes))
        scores = cross_validate(train, init_for, grid, args.folds, args.cv_iter)
        pe, pf = PUBLISHED[el]
        best = min(scores, key=lambda k: scores[k][0] / pe + scores[k][1] / pf)
        pot = fit(train, init_for(best[1]), weights=(1.0, 0.01, best[0]), max_iter=args.max_iter,
                  seed=0, log=None)
        e, f = maes(pot, test)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        cv = ", ".join(f"w_s={k[0]:g} rb={k[1]}: {v[0]:.2f}/{v[1]:.4f}" for k, v in scores.items())
        print(f"{el}: level {LEVELS[el]}, cutoff {ref.max_dist}, {len(train)} train / {len(test)} "
              f"test; CV (E meV/atom / F eV/Å MAE) {cv}; chose w_s={best[0]:g}, rb={best[1]}")
        print(f"{el}: test MAE E {e:.2f} meV/atom (published {pe}), F {f:.4f} eV/Å "
              f"(published {pf}); wall {wall:.0f} s, CPU {cpu:.0f} s", flush=True)
        rows.append((el, e, pe, f, pf))
    print("\nel  E MAE (ours / paper) meV/atom   F MAE (ours / paper) eV/Å")
    for el, e, pe, f, pf in rows:
        print(f"{el:3s} {e:8.2f} / {pe:<8.2f}            {f:8.4f} / {pf:.4f}")


if __name__ == "__main__":
    main()
