"""Cost of grading one configuration with MLIP-3's selection weights, against energy rows alone.

    python benchmarks/bench_selection_weights.py [--levels 8 16] [--sizes 2 3] [--repeats 5]

Fcc Cu cells (--sizes: repeats of the 4-atom cubic cell), an MTP of each level fitted to EMT
(species and moment coefficients; seeded radial coefficients), an active set from 30
training cells per weight setting. Times `ActiveSet.evaluate` (energy, forces, stress and
gamma of one configuration) per call, the least CPU time of --repeats calls after a warm-up,
one numba thread, for: energy rows (the default), energy + forces, energy + forces + stress,
site energies. Prints the ratio of each to the default in the same run, and the number of
radial coefficients (each costs two kernel passes with force or stress rows).
"""
import argparse
import os
import time
import warnings

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numba  # noqa: E402
import numpy as np  # noqa: E402

from mtplib.active import ActiveSet, SelectionWeights  # noqa: E402
from mtplib.active.testing import emt_cells, linear_fit, tiny_potential  # noqa: E402

SETTINGS = {"energy": SelectionWeights(),
            "energy+forces": SelectionWeights(energy=1.0, forces=1.0),
            "energy+forces+stress": SelectionWeights(energy=1.0, forces=1.0, stress=1.0),
            "site energies": SelectionWeights.for_mode("neighborhood")}


def least_cpu(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    numba.set_num_threads(1)
    warnings.simplefilter("ignore")
    print(f"load average {os.getloadavg()}")
    for level in args.levels:
        train = emt_cells(30, repeat=(1, 1, 2), seed=1)
        pot = linear_fit(tiny_potential(level), train)
        sets = {name: ActiveSet.from_training(pot, train, weights=w) for name, w in SETTINGS.items()}
        for size in args.sizes:
            atoms = emt_cells(1, repeat=(size,) * 3, rattle=0.1, seed=7)[0]
            times = {name: least_cpu(lambda a=aset: a.evaluate(atoms), args.repeats)
                     for name, aset in sets.items()}
            base = times["energy"]
            parts = ", ".join(f"{name} {t * 1e3:.2f} ms (x{t / base:.1f})" for name, t in times.items())
            print(f"level {level} ({pot.parameter_count} parameters, {pot.radial_coeffs.size} "
                  f"radial), {len(atoms)} atoms: {parts}")


if __name__ == "__main__":
    main()
