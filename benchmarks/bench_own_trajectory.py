#!/usr/bin/env python3
"""Is the force error on a potential's own trajectory extrapolation, or fitting error?

For a finished workflow run (its results/ folder): the final potential's force RMSE on its
final training set, by where the configurations came from (stage-2 displaced crystals,
active-learning crystal MD, active-learning amorphous/melt MD), with their densities; then,
for every validation scenario with relabelled frames, each frame's density, extrapolation
grade against the final active set, and force RMSE against the reference. If the frames of
a validation run grade as interpolation (gamma near 1) and their error matches the training
error of the same kind of configuration, the error is the fit's, not the active set's.

    python benchmarks/bench_own_trajectory.py RESULTS_DIR
"""
import argparse
import collections
from pathlib import Path

import numpy as np
from ase.io import read

from mtplib import MTPotential
from mtplib.active.grade import ActiveSet


def density(atoms):
    """g/cm³ of a periodic cell."""
    return atoms.get_masses().sum() * 1.66053907 / atoms.get_volume()


def kind(atoms):
    scenario = str(atoms.info.get("scenario", ""))
    if not scenario:
        return "stage-2 displaced crystals"
    return "AL amorphous/melt MD" if scenario.startswith("amorphous") else "AL crystal MD"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", help="the run's results/ folder")
    args = ap.parse_args()
    res = Path(args.results)
    pot = MTPotential.load(res / "final" / "potential.mtp")
    aset = ActiveSet.load(res / "final" / "potential.als.npz", pot)
    train_file = sorted(res.glob("al/iter_*/train.extxyz"))[-1]
    print(f"{res}: final potential, active set {aset.mode} mode ({aset.size} rows); "
          f"training set {train_file}")
    groups = collections.defaultdict(list)
    for atoms in read(train_file, ":"):
        err = pot.evaluate(atoms)["forces"] - atoms.get_forces()
        groups[kind(atoms)].append((np.sum(err ** 2), err.size, density(atoms)))
    print("\ntraining set, by origin: force RMSE (eV/Å), density (g/cm³) median (range)")
    for name, rows in groups.items():
        rows = np.array(rows)
        print(f"  {name:28s} {len(rows):4d} configurations  F-RMSE "
              f"{np.sqrt(rows[:, 0].sum() / rows[:, 1].sum()):.3f}  density "
              f"{np.median(rows[:, 2]):.2f} ({rows[:, 2].min():.2f}-{rows[:, 2].max():.2f})")
    print("\nvalidation frames relabelled by the reference: quartiles over frames")
    for path in sorted(res.glob("validation/*/relabelled.extxyz")):
        rows = np.array([(density(a), aset.grade(a),
                          np.sqrt(np.mean((pot.evaluate(a)["forces"] - a.get_forces()) ** 2)))
                         for a in read(path, ":")])
        q = np.percentile(rows, [0, 50, 100], axis=0)
        print(f"  {path.parent.name:18s} {len(rows):3d} frames  density {q[1, 0]:.2f} "
              f"({q[0, 0]:.2f}-{q[2, 0]:.2f})  gamma {q[1, 1]:.2f} ({q[0, 1]:.2f}-{q[2, 1]:.2f})  "
              f"F-RMSE {q[1, 2]:.3f} ({q[0, 2]:.3f}-{q[2, 2]:.3f})  "
              f"corr(gamma, F-RMSE) {np.corrcoef(rows[:, 1], rows[:, 2])[0, 1]:.2f}")


if __name__ == "__main__":
    main()
