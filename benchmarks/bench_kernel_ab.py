#!/usr/bin/env python3
"""Before/after of the level-16 kernel in one run: this checkout against another (e.g. main).

    python benchmarks/bench_kernel_ab.py --other /work/main [--rounds 5]

Each round runs one child process per checkout, alternately (so that the load of a shared
machine falls on both alike); a child imports `mtplib` from its checkout (numba cache under
$TMPDIR per checkout) and prints the least CPU time of 5 calls, in µs per atom, one numba
thread, of: the kernel alone (energy and forces; `MTPotential.run_kernel`) and the ASE
calculator (energy, forces, stress, with the neighbour search) on a rattled 4000-atom fcc
Cu cell, and the kernel on a 256-atom cell. The potential is that of bench_evaluate.py (level
16, random coefficients, seeded). Prints each checkout's medians over the rounds and the
ratio this/other.
"""
import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
import numba, numpy as np
from ase.build import bulk
import mtplib
from mtplib import MTPCalculator, MTPotential
assert mtplib.__file__.startswith(sys.argv[1]), mtplib.__file__
numba.set_num_threads(1)
rng = np.random.default_rng(16)
pot = MTPotential.from_level(16, ["Cu"], 1.7, 5.0, 8)
pot.radial_coeffs = rng.normal(scale=0.3, size=(1, 1, pot.radial_funcs_count, 8))
pot.species_coeffs = np.array([-3.0])
pot.moment_coeffs = rng.normal(scale=0.05, size=pot.alpha_scalar_moments)
pot.scaling = 0.1

def cpu(fn, n=5):
    fn()
    best = np.inf
    for _ in range(n):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best

out = []
for reps in (10, 4):
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((reps,) * 3)
    atoms.rattle(0.05, seed=3)
    types = pot.types_of(atoms)
    off, nbr, vec = pot.neighbors(atoms)
    out.append(cpu(lambda: pot.run_kernel(types, off, nbr, vec, True, False, False)) / len(atoms))
    if reps == 10:
        calc = MTPCalculator(pot)
        out.append(cpu(lambda: calc.calculate(atoms, ["energy", "forces", "stress"])) / len(atoms))
print(" ".join(f"{1e6 * x:.4f}" for x in out))
"""

COLUMNS = ("kernel E+F, 4000 atoms", "calculator E+F+S, 4000 atoms", "kernel E+F, 256 atoms")


def child(tree, cache):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), PYTHONPATH=str(tree),
               OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", CHILD, str(tree)], capture_output=True, text=True,
                         env=env, cwd=tree, check=True).stdout
    return [float(x) for x in out.split()[-3:]]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--other", required=True, help="the other checkout (e.g. /work/main)")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    trees = {"this": ROOT, "other": Path(args.other).resolve()}
    caches = {name: Path(tempfile.gettempdir()) / f"mtplib_ab_cache_{tree.name}"
              for name, tree in trees.items()}
    for name, tree in trees.items():                 # compile (or load) each checkout's kernels
        child(tree, caches[name])
    results = {name: [] for name in trees}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            results[name].append(child(tree, caches[name]))
    print(f"this = {trees['this']}, other = {trees['other']}; CPU µs/atom, 1 thread, median of "
          f"{args.rounds} alternating rounds (each the least of 5 calls)")
    print(f"{'case':30s} {'this':>8s} {'other':>8s} {'this/other':>11s}")
    for c, name in enumerate(COLUMNS):
        this = float(np.median([r[c] for r in results["this"]]))
        other = float(np.median([r[c] for r in results["other"]]))
        print(f"{name:30s} {this:8.2f} {other:8.2f} {this / other:11.3f}")
    print(f"load average during the run: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
