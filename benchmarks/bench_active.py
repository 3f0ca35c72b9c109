"""Learning-on-the-fly MD speed (level-16 Cu MTP) and where a step's time goes; one numba thread.

    python benchmarks/bench_active.py [--level 16] [--sizes 2 4] [--steps 300 60] [--repeats 3]

For fcc Cu cells of 32 and 256 atoms (--sizes: repeats of the 4-atom cubic cell) and both
grading modes (configuration: grade every step; neighbourhood: every 10 steps), NVT
Langevin at 300 K, 1 fs: MD steps per second of `run_md` with engine="ase" (ASE's
integrator through Atoms and ActiveCalculator) and engine="native" (the same arithmetic on
arrays, mtplib.md), by wall time and by CPU time of this process (the best of --repeats
runs: on a shared machine CPU time is the cost of the work itself, wall time adds the waits
for a core). Then the split of one step: neighbour search, kernel (energy and forces, with
the parameter rows on grading steps), the grade (rows times A^-1), and the rest (integrator,
calculator round trip, Python). The engines alternate within each case, so that the load of
the machine affects both alike.
"""
import argparse
import os
import time
import warnings

# one core: BLAS (the grade's rows times A^-1) on one thread too, set before numpy loads it
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numba  # noqa: E402
import numpy as np  # noqa: E402
from ase.build import bulk  # noqa: E402

from mtplib.active import ActiveSet, Thresholds, run_md  # noqa: E402
from mtplib.active.maxvol import UnderdeterminedWarning  # noqa: E402
from mtplib.active.testing import emt_cells, linear_fit, tiny_potential  # noqa: E402
from mtplib.neighbors import neighbor_csr_shortest  # noqa: E402

MODES = (("configuration", 1), ("neighborhood", 10))


def best_cpu_wall(fn, repeats):
    """(least wall time, least CPU time) of `fn` over repeats, after one warm-up call."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return min(wall), min(cpu)


def per_call_cpu(fn, calls=200, repeats=3):
    """Least CPU time of one call (µs), from the mean over `calls` calls, best of repeats."""
    fn()
    best = np.inf
    for _ in range(repeats):
        c = time.process_time()
        for _ in range(calls):
            fn()
        best = min(best, (time.process_time() - c) / calls)
    return best * 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--level", type=int, default=16)
    ap.add_argument("--sizes", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--steps", type=int, nargs="+", default=[300, 60],
                    help="MD steps per run, one per size")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    numba.set_num_threads(1)
    train = emt_cells(12, seed=1, rattle=0.05, strain=0.02)
    pot = linear_fit(tiny_potential(args.level, min_dist=1.8, max_dist=5.0, radial_basis_size=8),
                     train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnderdeterminedWarning)
        sets = {mode: ActiveSet.from_training(pot, train, mode=mode) for mode, _ in MODES}
    print(f"level {args.level}: {pot.parameter_count} parameters; NVT Langevin 300 K, 1 fs; "
          f"1 numba thread, OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}")
    print(f"\n{'atoms':>6s} {'mode (grade every)':24s} {'engine':7s} {'steps/s wall':>13s} "
          f"{'steps/s CPU':>12s} {'CPU µs/step':>12s}")
    splits = []
    for reps, steps in zip(args.sizes, args.steps + args.steps[-1:] * len(args.sizes)):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((reps,) * 3)
        atoms.positions += 0.03 * np.random.default_rng(0).normal(size=atoms.positions.shape)
        n = len(atoms)
        for mode, interval in MODES:
            aset = sets[mode]
            quiet = Thresholds(gamma_select=1e9, gamma_break=1e10, interval=interval)
            cpu_step = {}
            for engine in ("ase", "native"):
                def run():
                    res = run_md(pot, atoms.copy(), active_set=aset, thresholds=quiet, steps=steps,
                                 temperature=300, log=None, engine=engine)
                    assert res.steps == steps, res.message
                wall, cpu = best_cpu_wall(run, args.repeats)
                cpu_step[engine] = cpu / steps * 1e6
                print(f"{n:6d} {mode + f' ({interval})':24s} {engine:7s} {steps / wall:13.0f} "
                      f"{steps / cpu:12.0f} {cpu_step[engine]:12.0f}")
            # the split of a step, from its parts timed alone
            types = pot.types_of(atoms)
            cell, pbc = atoms.cell.array, atoms.pbc
            offsets, nbr, vec, _ = neighbor_csr_shortest(atoms.positions, cell, pbc, pot.max_dist)
            per_atom = mode == "neighborhood"
            t_nbr = per_call_cpu(lambda: neighbor_csr_shortest(atoms.positions, cell, pbc,
                                                               pot.max_dist))
            t_plain = per_call_cpu(lambda: pot.run_kernel(types, offsets, nbr, vec, True, False,
                                                          False))
            t_rows = per_call_cpu(lambda: pot.run_kernel(types, offsets, nbr, vec, True, True,
                                                         per_atom))
            rows = pot.run_kernel(types, offsets, nbr, vec, True, True, per_atom)[3]
            rows = rows if per_atom else rows.sum(axis=0, keepdims=True) / n
            t_grade = per_call_cpu(lambda: aset.grade_rows(rows))
            kernel = t_plain + (t_rows - t_plain + t_grade) / interval
            splits.append((n, f"{mode} ({interval})", t_nbr, t_plain, (t_rows - t_plain) / interval,
                           t_grade / interval, cpu_step))
    print("\nsplit of one step (CPU µs; kernel rows and grade averaged over the grading interval;"
          " the rest = step - the parts)")
    print(f"{'atoms':>6s} {'mode':18s} {'neighbours':>10s} {'kernel E+F':>10s} {'+rows':>7s} "
          f"{'grade':>7s} {'rest ase':>9s} {'rest native':>12s}")
    for n, mode, t_nbr, t_plain, t_rows, t_grade, cpu_step in splits:
        parts = t_nbr + t_plain + t_rows + t_grade
        print(f"{n:6d} {mode:18s} {t_nbr:10.0f} {t_plain:10.0f} {t_rows:7.0f} {t_grade:7.0f} "
              f"{cpu_step['ase'] - parts:9.0f} {cpu_step['native'] - parts:12.0f}")
    print(f"\nload average during the run: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
