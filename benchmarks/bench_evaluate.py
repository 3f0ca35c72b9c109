#!/usr/bin/env python3
"""Speed of energy + forces + stress: mtplib against motep's numba engine, same run, same potential.

Data: the Cu set of ../shared/bench/make_cu_emt.py (1000 cells of 32 atoms) and one
4000-atom fcc Cu cell; a level-16 MTP, min_dist 1.7 Å (below the closest pair
of the set, so that neither code warns inside the timed loops), max_dist 5 Å, radial basis size 8.
Prints µs per atom (median of repeats) on 1 and 2 threads, through the ASE calculator one
structure at a time and through `MTPotential.evaluate_many` (all cells in one parallel pass),
motep's figure and the ratio, and the peak memory of the evaluation against the atom count.
The 2-thread speed-up is the median of ratios measured in alternating 1- and 2-thread
rounds (each time the least of 10 calls), so that the load of a shared machine affects both
alike.

    python benchmarks/bench_evaluate.py [--cells 1000] [--repeats 5] [--rounds 9]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np
from ase.build import bulk
from ase.io import read

from mtplib import MTPCalculator, MTPotential

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def cu_set(n_cells):
    cache = Path(tempfile.gettempdir()) / "mtplib_bench_cu"
    if not (cache / "test.extxyz").exists():
        subprocess.run([sys.executable, str(SHARED / "bench" / "make_cu_emt.py"), str(cache)], check=True)
    return read(cache / "test.extxyz", f":{n_cells}")


def bench_potential(path):
    """A level-16 Cu MTP with fixed pseudo-random coefficients of realistic scale."""
    rng = np.random.default_rng(16)
    pot = MTPotential.from_level(16, ["Cu"], 1.7, 5.0, 8)
    pot.radial_coeffs = rng.normal(scale=0.3, size=(1, 1, pot.radial_funcs_count, 8))
    pot.species_coeffs = np.array([-3.0])
    pot.moment_coeffs = rng.normal(scale=0.05, size=pot.alpha_scalar_moments)
    pot.scaling = 0.1
    pot.save(path)
    return pot


def median_time(fn, repeats):
    """Median wall time of `fn` over repeats (after one warm-up call).

    Also records the smallest CPU time of this process in CPU_TIMES: on a shared machine
    under load, wall time counts the waits for a core; for one thread the CPU time is the
    cost of the work itself."""
    fn()
    times, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    CPU_TIMES.append(min(cpu))
    return float(np.median(times))


CPU_TIMES = []


def efs_all(calc, images):
    def run():
        for atoms in images:
            calc.calculate(atoms, ["energy", "forces", "stress"])
    return run


def thread_speedup(cases, rounds, calls=10):
    """Median over alternating rounds of (1-thread time / 2-thread time), per case; in each
    round either time is the least of `calls` calls (a call that another job interrupts is
    slower, never faster)."""
    ratios = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            times = []
            for threads in (1, 2):
                numba.set_num_threads(threads)
                fn()
                best = np.inf
                for _ in range(calls):
                    t = time.perf_counter()
                    fn()
                    best = min(best, time.perf_counter() - t)
                times.append(best)
            ratios[name].append(times[0] / times[1])
    numba.set_num_threads(1)
    return {name: (float(np.median(r)), min(r), max(r)) for name, r in ratios.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp())
    pot = bench_potential(tmp / "cu16.mtp")
    cells = cu_set(args.cells)
    big = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((10, 10, 10))
    big.rattle(0.05, seed=3)
    n_small = sum(len(a) for a in cells)
    print(f"level 16: {pot.alpha_scalar_moments} basis functions, {len(pot.alpha_index_basic)} basic "
          f"moments, {len(pot.alpha_index_times)} products; {len(cells)} cells ({n_small} atoms) + "
          f"one {len(big)}-atom cell")

    ours = MTPCalculator(pot)
    batch = lambda: pot.evaluate_many(cells)         # noqa: E731
    rows, cpu_rows = [], []
    for threads in (1, 2):
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        t_small = median_time(efs_all(ours, cells), args.repeats) / n_small * 1e6
        t_big = median_time(efs_all(ours, [big]), args.repeats) / len(big) * 1e6
        rows.append((f"mtplib calculator, {threads} thread(s)", t_small, t_big))
        t_batch = median_time(batch, args.repeats) / n_small * 1e6
        rows.append((f"mtplib evaluate_many, {threads} thr.", t_batch, float("nan")))
        if threads == 1:
            cpu_rows.append(("mtplib calculator, 1 thread", CPU_TIMES[-3] / n_small * 1e6,
                             CPU_TIMES[-2] / len(big) * 1e6))
            cpu_rows.append(("mtplib evaluate_many, 1 thread", CPU_TIMES[-1] / n_small * 1e6,
                             float("nan")))
    numba.set_num_threads(1)
    speedup = thread_speedup({"calculator, 4000-atom cell": efs_all(ours, [big]),
                              "evaluate_many, 32-atom cells": batch}, args.rounds) \
        if numba.config.NUMBA_NUM_THREADS >= 2 else {}

    try:
        from motep.calculator import make_calculator
        from motep.io.mlip.mtp import read_mtp
        data = read_mtp(tmp / "cu16.mtp")
        data.species = [29]                       # motep maps types to atomic numbers
        check = big.copy()
        check.calc = make_calculator(data, engine="numba")   # motep's calculator is per system size
        ref = pot.evaluate(big)
        rel = abs(check.get_potential_energy() - ref["energy"]) / abs(ref["energy"])
        frel = np.abs(check.get_forces() - ref["forces"]).max() / np.abs(ref["forces"]).max()
        print(f"motep agrees with mtplib: energy rel. diff {rel:.1e}, force rel. diff {frel:.1e}")
        motep_small = median_time(efs_all(make_calculator(data, engine="numba"), cells),
                                  max(1, args.repeats // 2)) / n_small * 1e6
        motep_big = median_time(efs_all(check.calc, [big]), max(1, args.repeats // 2)) / len(big) * 1e6
        rows.append(("motep numba engine, 1 thread", motep_small, motep_big))
        cpu_rows.append(("motep numba engine, 1 thread", CPU_TIMES[-2] / n_small * 1e6,
                         CPU_TIMES[-1] / len(big) * 1e6))
    except ImportError:
        print("motep not installed (pip install 'mtplib[bench]'): no peer figures")
        motep_small = motep_big = None

    print(f"\n{'engine':34s} {'32-atom cells µs/atom':>22s} {'4000-atom cell µs/atom':>23s}")
    for name, a, b in rows:
        print(f"{name:34s} {a:22.1f} {b:23.1f}")
    one, two = rows[0], rows[2]
    print(f"\nspeed-up on 2 threads, from the medians above: {one[1] / two[1]:.2f}x (32-atom cells, "
          f"calculator), {rows[1][1] / rows[3][1]:.2f}x (32-atom cells, evaluate_many), "
          f"{one[2] / two[2]:.2f}x (4000 atoms)")
    for name, (median, low, high) in speedup.items():
        print(f"speed-up on 2 threads, {name}: {median:.2f}x (median of {args.rounds} alternating "
              f"rounds, best of 10 calls each; range {low:.2f}-{high:.2f})")
    if motep_small:
        print(f"mtplib vs motep (1 thread): {motep_small / one[1]:.1f}x faster (32-atom cells), "
              f"{motep_big / one[2]:.1f}x faster (4000 atoms)")
    print("\nCPU time, 1 thread (the least over repeats; robust to other jobs on the machine):")
    for name, a, b in cpu_rows:
        print(f"{name:34s} {a:22.1f} {b:23.1f}")
    if len(cpu_rows) == 3:
        print(f"mtplib vs motep by CPU time: {cpu_rows[2][1] / cpu_rows[0][1]:.1f}x faster (32-atom cells), "
              f"{cpu_rows[2][2] / cpu_rows[0][2]:.1f}x faster (4000 atoms)")
    print(f"load average during the run: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")

    # memory: growth of the peak RSS (VmHWM of this process image; ru_maxrss would inherit the
    # parent's peak across fork/exec) when evaluating N atoms in a fresh process whose kernels
    # come from numba's on-disk cache (compiled above); linear in N = a constant per atom
    code = ("import sys;from ase.build import bulk;from mtplib import MTPotential;"
            "hwm=lambda:int([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0]);"
            "p=MTPotential.load(sys.argv[1]);p.kernel_arrays();"
            "a=bulk('Cu','fcc',a=3.61,cubic=True).repeat(int(sys.argv[2]));"
            "r0=hwm();p.evaluate(a);print(len(a), hwm()-r0)")
    print("\nmemory of one evaluation (peak RSS growth; the first call also loads the kernels):")
    previous = None
    for reps in (10, 16, 20):
        out = subprocess.run([sys.executable, "-c", code, str(tmp / "cu16.mtp"), str(reps)],
                             capture_output=True, text=True, check=True).stdout.split()
        n_atoms, kib = int(out[0]), int(out[1])
        slope = ""
        if previous:
            slope = f", {(kib - previous[1]) * 1024 / (n_atoms - previous[0]) / 1000:.2f} kB per extra atom"
        print(f"  {n_atoms:7d} atoms: {kib / 1024:8.1f} MiB{slope}")
        previous = (n_atoms, kib)


if __name__ == "__main__":
    main()
