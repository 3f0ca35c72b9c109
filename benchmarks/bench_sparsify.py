"""Sparsification of a correlated training set (Novikov et al. 2021, sec. 5.2.1), EMT Cu-Au.

    python benchmarks/bench_sparsify.py [--frames 240] [--every 5] [--level 10] [--iters 150]
        [--modes configuration neighborhood]

The training set is `--frames` consecutive frames (every `--every` steps) of one 800 K
Langevin trajectory of a 32-atom Cu/Au fcc cell; the test set, 100 frames of two other
trajectories of the same cell (800 K and 1100 K, other seeds). A potential fitted on the whole set gives the
active set; `sparsify` keeps the configurations it needs (every dropped one then has
gamma <= 1.001 on the kept ones), in each active-set mode of --modes. The potential is refitted on the kept configurations
(same initial potential and seed), and, as a control, on a random subset of the same size.
Prints the counts and the test errors (RMSE: energy per atom, forces) of the three fits.
"""
import argparse
import time

import numpy as np
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.md.langevin import Langevin
from ase.md import velocitydistribution as vd

from mtplib import MTPotential
from mtplib.active import ActiveSet, sparsify
from mtplib.active.testing import label_emt
from mtplib.analysis.errors import error_metrics
from mtplib.training import fit


def trajectory(count, every, temperature, seed):
    """Frames of one trajectory of the same Cu/Au cell (one composition: species energies
    are only determined up to it); `seed` gives the velocities and the Langevin noise."""
    atoms = bulk("Cu", "fcc", a=3.70, cubic=True).repeat((2, 2, 2))
    atoms.symbols = np.random.default_rng(0).choice(["Cu", "Au"], size=len(atoms), p=[0.6, 0.4])
    rng = np.random.default_rng(seed)
    atoms.calc = EMT()
    vd.thermalize_momenta(atoms, temperature_K=temperature, rng=rng)
    dyn = Langevin(atoms, 2 * units.fs, temperature_K=temperature, friction=0.01 / units.fs,
                   fixcm=False, rng=rng)
    dyn.run(100)                                   # leave the perfect lattice
    frames = []
    for _ in range(count):
        dyn.run(every)
        frames.append(label_emt(atoms))
    return frames


def test_errors(pot, test):
    m = error_metrics(test, pot.evaluate_many(test))
    return m["energy_per_atom"]["rmse"], m["forces"]["rmse"]       # meV/atom, eV/Å


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=240)
    ap.add_argument("--every", type=int, default=5)
    ap.add_argument("--level", type=int, default=10)
    ap.add_argument("--iters", type=int, default=150)
    ap.add_argument("--threshold", type=float, default=1.001)
    ap.add_argument("--modes", nargs="+", default=["configuration", "neighborhood"])
    args = ap.parse_args()
    train = trajectory(args.frames, args.every, 800, seed=1)
    test = trajectory(50, 20, 800, seed=2) + trajectory(50, 20, 1100, seed=3)
    init = MTPotential.from_level(args.level, ["Cu", "Au"], 2.0, 5.0, 8)
    print(f"level {args.level}, {init.parameter_count} parameters; train: {len(train)} frames "
          f"(every {args.every} steps of 2 fs, 800 K); test: {len(test)} frames")

    t = time.perf_counter()
    full = fit(train, init, seed=0, max_iter=args.iters, log=None)
    print(f"fit on all {len(train)}: {time.perf_counter() - t:.0f} s")
    rows = [("all frames", full, len(train))]
    for mode in args.modes:
        t = time.perf_counter()
        sparse = sparsify(full, train, mode=mode, threshold=args.threshold)
        kept = [train[k] for k in sparse.kept]
        dropped = [train[k].copy() for k in sparse.dropped(len(train))]
        check = ActiveSet.from_training(full, kept, mode=mode).grade_many(dropped)
        print(f"sparsify ({mode} mode): kept {len(kept)} of {len(train)} in "
              f"{time.perf_counter() - t:.1f} s ({sparse.rounds} maxvol rounds); max gamma of "
              f"the dropped on the kept {check.max():.4f}")
        rows.append((f"sparsified, {mode}", fit(kept, init, seed=0, max_iter=args.iters, log=None),
                     len(kept)))
        random_idx = np.sort(np.random.default_rng(0).choice(len(train), size=len(kept),
                                                              replace=False))
        rows.append((f"random {len(kept)} (control)",
                     fit([train[k] for k in random_idx], init, seed=0, max_iter=args.iters,
                         log=None), len(kept)))
    print(f"{'fit':28s} {'configs':>8s} {'E RMSE meV/atom':>16s} {'F RMSE eV/Å':>12s}")
    for name, pot, n in rows:
        e, f = test_errors(pot, test)
        print(f"{name:28s} {n:8d} {e:16.3f} {f:12.4f}")

if __name__ == "__main__":
    main()
