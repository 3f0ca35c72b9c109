"""Hot MD with and without MLIP-2's repulsive core (RBChebyshev_repuls), EMT Cu.

    python benchmarks/bench_repulsive_md.py [--level 10] [--train 24] [--iters 150]
        [--temperatures 2000 3000 4000] [--seeds 5] [--steps 2000] [--close 1.5]

Two potentials are trained with the same data, level, seed and settings; they differ only in
the radial basis type (RBChebyshev vs RBChebyshev_repuls), with min_dist at the smallest
distance of the training set. Each then runs NVT (Langevin, 2 fs) MD of a 108-atom fcc cell
at every temperature and seed, without active learning. A run fails ("blow-up") when atoms
come closer than --close Å (EMT Cu keeps them above it at these temperatures: the EMT
reference run of each temperature is printed) or the energy turns non-finite. Prints the
survival counts and, per potential, the steps at which the failures happened.
"""
import argparse
import time
import warnings

import numpy as np
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.md import velocitydistribution as vd
from ase.md.langevin import Langevin

from mtplib import MTPotential
from mtplib.active import Thresholds, run_md
from mtplib.active.testing import emt_cells
from mtplib.analysis.errors import min_distance
from mtplib.training import fit


def emt_min_distance(temperature, steps, seed):
    """Smallest interatomic distance along an EMT run of the same protocol."""
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((3, 3, 3))
    rng = np.random.default_rng(seed)
    vd.thermalize_momenta(atoms, temperature_K=temperature, rng=rng)
    atoms.calc = EMT()
    dyn = Langevin(atoms, 2 * units.fs, temperature_K=temperature, friction=0.01 / units.fs,
                   fixcm=False, rng=rng)
    dmin = np.inf
    for _ in range(steps // 10):
        dyn.run(10)
        d = atoms.get_all_distances(mic=True)
        dmin = min(dmin, d[np.triu_indices(len(atoms), 1)].min())
    return dmin


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--level", type=int, default=10)
    ap.add_argument("--train", type=int, default=24)
    ap.add_argument("--rattle", type=float, default=0.08, help="Å, of the training cells")
    ap.add_argument("--iters", type=int, default=150)
    ap.add_argument("--temperatures", type=float, nargs="+", default=[2000, 3000, 4000])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--close", type=float, default=1.5)
    ap.add_argument("--emt-steps", type=int, default=1000)
    args = ap.parse_args()

    train = emt_cells(args.train, seed=1, rattle=args.rattle, strain=0.03)
    dmin, _ = min_distance(train)
    min_dist = np.floor(dmin * 20) / 20
    print(f"training set: {len(train)} EMT Cu cells of 32 atoms, smallest distance {dmin:.3f} Å; "
          f"min_dist = {min_dist} Å, max_dist = 5.0 Å, level {args.level}")
    pots = {}
    for rb_type in ("RBChebyshev", "RBChebyshev_repuls"):
        init = MTPotential.from_level(args.level, ["Cu"], min_dist, 5.0, 8,
                                      radial_basis_type=rb_type)
        t = time.perf_counter()
        pots[rb_type] = fit(train, init, seed=0, max_iter=args.iters, log=None)
        res = pots[rb_type].evaluate_many(train)
        f_rmse = np.sqrt(np.mean([((r["forces"] - a.get_forces()) ** 2).mean()
                                  for r, a in zip(res, train)]))
        print(f"{rb_type:19s} trained in {time.perf_counter() - t:.0f} s; train force RMSE "
              f"{f_rmse:.4f} eV/Å")

    for temperature in args.temperatures:
        ref = emt_min_distance(temperature, args.emt_steps, 0)
        print(f"\nT = {temperature:g} K (EMT reference run, {args.emt_steps} steps: smallest "
              f"distance {ref:.3f} Å)")
        for rb_type, pot in pots.items():
            survived, failures, close_warnings = 0, [], 0
            for seed in range(args.seeds):
                atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((3, 3, 3))
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    res = run_md(pot, atoms, temperature=temperature, steps=args.steps,
                                 timestep=2.0, seed=seed, log=None,
                                 thresholds=Thresholds(min_distance=args.close))
                close_warnings += sum("closer than min_dist" in str(w.message) for w in caught)
                if res.reason == "finished":
                    survived += 1
                else:
                    failures.append(res.steps)
            print(f"  {rb_type:19s} survived {survived}/{args.seeds} runs of {args.steps} steps; "
                  f"failures at steps {failures}; evaluations below min_dist warned: "
                  f"{close_warnings}")


if __name__ == "__main__":
    main()
