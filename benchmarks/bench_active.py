"""Cost of the extrapolation grade and learning-on-the-fly MD speed (level-16 Cu MTP, 256 atoms).

    python benchmarks/bench_active.py [--level 16] [--repeat 20] [--steps 50]

Prints: time of plain evaluation, of evaluation + configuration-mode grade (one fused pass,
`ActiveSet.evaluate`), of the naive route (evaluate + site_energy_gradients), and MD steps
per second with the grade every step and without grading.
"""
import argparse
import time

import numpy as np
from ase.build import bulk

from mtplib.active import ActiveSet, Thresholds, run_md
from mtplib.active.testing import emt_cells, linear_fit, tiny_potential


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)), float(np.min(times))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--level", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--steps", type=int, default=50)
    args = ap.parse_args()
    train = emt_cells(12, seed=1, rattle=0.05, strain=0.02)
    pot = linear_fit(tiny_potential(args.level, min_dist=1.8, max_dist=5.0, radial_basis_size=8),
                     train)
    aset = ActiveSet.from_training(pot, train)
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((4, 4, 4))
    atoms.positions += 0.03 * np.random.default_rng(0).normal(size=atoms.positions.shape)
    print(f"level {args.level}: {pot.parameter_count} parameters, {len(atoms)} atoms")
    for fn in (lambda: pot.evaluate(atoms), lambda: aset.evaluate(atoms),
               lambda: pot.site_energy_gradients(atoms)):
        fn()                                    # compile
    plain = best_of(lambda: pot.evaluate(atoms), args.repeat)
    graded = best_of(lambda: aset.evaluate(atoms), args.repeat)
    naive = best_of(lambda: (pot.evaluate(atoms), pot.site_energy_gradients(atoms)), args.repeat)
    print(f"plain evaluate            {1e3 * plain[0]:8.2f} ms (min {1e3 * plain[1]:.2f})")
    print(f"evaluate + grade (fused)  {1e3 * graded[0]:8.2f} ms (min {1e3 * graded[1]:.2f})  "
          f"extra {100 * (graded[1] / plain[1] - 1):+.1f} % (min/min)")
    print(f"evaluate + dE/dtheta      {1e3 * naive[0]:8.2f} ms (min {1e3 * naive[1]:.2f})  "
          f"extra {100 * (naive[1] / plain[1] - 1):+.1f} % (naive route)")
    quiet = Thresholds(gamma_select=1e9, gamma_break=1e10)
    for label, kwargs in (("MD, grade every step", dict(active_set=aset, thresholds=quiet)),
                          ("MD, no grading", dict())):
        run_md(pot, atoms.copy(), steps=2, temperature=300, log=None, **kwargs)
        t = time.perf_counter()
        res = run_md(pot, atoms.copy(), steps=args.steps, temperature=300, log=None, **kwargs)
        dt = time.perf_counter() - t
        print(f"{label:22s} {res.steps / dt:8.1f} steps/s ({res.steps} steps, {res.reason})")


if __name__ == "__main__":
    main()
