#!/usr/bin/env python3
"""Does a higher MTP level fit the HfO2 melt better? One fit per level on one training set.

Protocol (fixed before the first run): the training set of a finished HfO2 active-learning
run (its last iteration's train.extxyz, all of it: --test-fraction 0), `mtplib train` with
the example's settings (min_dist 1.1, max_dist 5, radial basis size 8, RBChebyshev_repuls,
weights 1 / 0.01 / 0.001, max_iter 2000, the default convergence stop), seed 0, one fit per
level. Reported per level: the force RMSE on the training set by the configurations' origin
(stage-2 displaced crystals, active-learning crystal MD, active-learning melt MD; see
bench_own_trajectory.py), the energy and force RMSE on stage 2's held-out test set, the
parameter count and the CPU time of the fit. One seed per level: differences of a few per
cent are within the spread of seeds.

    python benchmarks/bench_level_melt.py RESULTS_DIR [--levels 16 20] [--work DIR]
"""
import argparse
import collections
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from ase.io import read
from bench_own_trajectory import kind

from mtplib import MTPotential

SETTINGS = ["--species", "Hf", "O", "--min-dist", "1.1", "--max-dist", "5.0",
            "--radial-basis-size", "8", "--radial-basis-type", "RBChebyshev_repuls",
            "--weights", "1", "0.01", "0.001", "--max-iter", "2000", "--seed", "0",
            "--test-fraction", "0"]


def rmse(pot, images):
    """(energy RMSE meV/atom, force RMSE eV/Å) of a potential on labelled images."""
    de, df, n = [], 0.0, 0
    for atoms in images:
        result = pot.evaluate(atoms)
        de.append((result["energy"] - atoms.get_potential_energy()) / len(atoms))
        df += np.sum((result["forces"] - atoms.get_forces()) ** 2)
        n += 3 * len(atoms)
    return 1000 * np.sqrt(np.mean(np.square(de))), np.sqrt(df / n)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", help="the HfO2 run's results/ folder")
    ap.add_argument("--levels", type=int, nargs="+", default=[16, 20])
    ap.add_argument("--work", help="folder for the potentials (default: a temporary one)")
    args = ap.parse_args()
    res = Path(args.results)
    train_file = sorted(res.glob("al/iter_*/train.extxyz"))[-1]
    train = read(train_file, ":")
    test = read(res / "labels" / "test.extxyz", ":")
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_level_melt_"))
    work.mkdir(parents=True, exist_ok=True)
    groups = collections.defaultdict(list)
    for atoms in train:
        groups[kind(atoms)].append(atoms)
    print(f"training set {train_file} ({len(train)}: "
          + ", ".join(f"{k} {len(v)}" for k, v in groups.items())
          + f"); test {res / 'labels' / 'test.extxyz'} ({len(test)})")
    for level in args.levels:
        out = work / f"level{level}.mtp"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-m", "mtplib", "train", "--level", str(level),
                        *SETTINGS, str(train_file), "--out", str(out)], check=True,
                       stdout=subprocess.DEVNULL)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        pot = MTPotential.load(out)
        by_group = {name: rmse(pot, images)[1] for name, images in groups.items()}
        e_test, f_test = rmse(pot, test)
        print(f"level {level}: {pot.parameter_count} parameters, fit {cpu:.0f} CPU-s; train F-RMSE "
              + ", ".join(f"{k} {v:.3f}" for k, v in by_group.items())
              + f" eV/Å; test {e_test:.2f} meV/atom, {f_test:.3f} eV/Å", flush=True)


if __name__ == "__main__":
    main()
