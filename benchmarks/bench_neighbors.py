"""Neighbour-list backends: ms per call (median of repeats) and ratio to the fastest.

    python benchmarks/bench_neighbors.py [--repeats 21]

Every backend goes through mtplib.neighbors.neighbor_list (same validation and
sorting), so the figures include the per-call Python overhead a caller pays.
Before timing, each case checks that all backends return the same pairs.
"""

import argparse
import os
import time

import numpy as np
from ase.build import bulk

from mtplib.neighbors import neighbor_list

BACKENDS = ("ase", "vesin", "numba")


def fcc_cu(repeat):
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(repeat)
    atoms.rattle(0.05, seed=0)
    return atoms.positions, atoms.cell.array, atoms.pbc


def small_triclinic():
    cell = np.array([[2.6, 0.0, 0.0], [0.9, 2.4, 0.0], [0.5, 0.7, 2.5]])
    fractions = np.array([[0.0, 0.0, 0.0], [0.33, 0.41, 0.27], [0.71, 0.18, 0.62]])
    return fractions @ cell, cell, np.array([True, True, True])


CASES = {
    "32-atom fcc Cu, 5 A": (fcc_cu(2), 5.0),
    "4000-atom fcc Cu, 5 A": (fcc_cu(10), 5.0),
    "3-atom triclinic, 6 A": (small_triclinic(), 6.0),
}


def pair_set(i, j, D):
    return set(zip(i.tolist(), j.tolist(), map(tuple, (np.round(D, 6) + 0.0).tolist())))


def median_ms(call, repeats):
    call()  # warm-up (numba compilation, vesin set-up)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def training_set_seconds(backend, n_structures=1000):
    """1000 calls on distinct rattled 32-atom cells, as in a training set."""
    rng = np.random.default_rng(1)
    positions, cell, pbc = fcc_cu(2)
    structures = [positions + rng.normal(0.0, 0.1, positions.shape) for _ in range(n_structures)]
    neighbor_list(structures[0], cell, pbc, 5.0, backend=backend)
    start = time.perf_counter()
    for frame in structures:
        neighbor_list(frame, cell, pbc, 5.0, backend=backend)
    return time.perf_counter() - start


def print_row(label, figures, unit):
    fastest = min(figures.values())
    cells = "".join(f"{figures[b]:10.3f}{unit} ({figures[b] / fastest:4.1f}x)" for b in BACKENDS)
    print(f"{label:<28}{cells}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21)
    args = parser.parse_args()

    print(f"cores: {os.cpu_count()}  (vesin uses all of them; numba and ASE use one)")
    print(f"{'case':<28}" + "".join(f"{b:>22}" for b in BACKENDS))
    for label, ((positions, cell, pbc), cutoff) in CASES.items():
        pairs = {b: pair_set(*neighbor_list(positions, cell, pbc, cutoff, backend=b)) for b in BACKENDS}
        assert pairs["numba"] == pairs["ase"] == pairs["vesin"], f"backends disagree on {label}"
        repeats = max(3, args.repeats // 4) if "4000" in label else args.repeats
        figures = {
            b: median_ms(lambda b=b: neighbor_list(positions, cell, pbc, cutoff, backend=b), repeats)
            for b in BACKENDS
        }
        print_row(label, figures, "ms")
    figures = {b: training_set_seconds(b) for b in BACKENDS}
    print_row("1000 x 32-atom cells, 5 A", figures, " s")


if __name__ == "__main__":
    main()
