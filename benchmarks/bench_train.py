#!/usr/bin/env python3
"""Training benchmark on the Cu EMT set (200 train / 1000 test 32-atom cells).

Level 16, min_dist 2 Å, max_dist 5 Å, radial_basis_size 8, weights (1, 0.01, 0.001).
Reference (shared/bench/README.md): MLIP-2 reached test E RMSE 0.138 meV/atom and
F RMSE 0.00561 eV/Å in 1414 CPU-s.

Prints wall and CPU time of the fit, test errors, the cost of the VarPro radial gradient
(forward-over-reverse) against forward differences of the forces, and a seed scan; and first
`mtplib train --level 16 train.extxyz --out X` with every other setting at its default (its
convergence-based stop, its own 20 % hold-out), timed as a user runs it (a fresh process on
a warm numba cache, CPU time of the process) and scored on the 1000 test cells.

    python benchmarks/bench_train.py [--max-iter 10] [--scan-seeds 20] [--data DIR]
        [--defaults-only] [--no-defaults] [--curve 60]

--curve N: instead, one fit of N iterations without early stop (tol 0), printing the loss,
the CPU time and the test errors at iterations 3 ... N (each with the final linear solve on
all training cells at that iteration's radial coefficients): where to stop by default.
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from ase.io import read

from mtplib.potential import MTPotential
from mtplib.training import fit, scan
from mtplib.training.data import prepare
from mtplib.training.loss import loss_terms, normal_equations, pack
from mtplib.training.optimize import initial_radial_coeffs, solve_linear

MAKE = Path(__file__).resolve().parents[1] / ".." / "shared" / "bench" / "make_cu_emt.py"


def cpu_time():
    own = time.process_time()
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own + ch.ru_utime + ch.ru_stime


def data_dir(arg):
    d = Path(arg) if arg else Path(tempfile.gettempdir()) / "mtplib_bench_cu"
    if not (d / "train.extxyz").exists():
        d.mkdir(parents=True, exist_ok=True)
        maker = MAKE if MAKE.exists() else Path("/work/shared/bench/make_cu_emt.py")
        subprocess.run([sys.executable, str(maker), str(d)], check=True)
    return d


def test_errors(pot, test):
    res = pot.evaluate_many(test)
    de = np.array([(r["energy"] - a.get_potential_energy()) / len(a) for r, a in zip(res, test)])
    df = np.concatenate([(r["forces"] - a.get_forces()).ravel() for r, a in zip(res, test)])
    return 1000 * float(np.sqrt(np.mean(de ** 2))), float(np.sqrt(np.mean(df ** 2)))


def gradient_methods(train, init):
    """Seconds for one radial gradient: forward-over-reverse vs forward differences."""
    pot = init.copy()
    pot.radial_coeffs = initial_radial_coeffs(pot, 0)
    pot.species_coeffs = np.zeros(1)
    pot.moment_coeffs = np.zeros(pot.alpha_scalar_moments)
    batches = pack(prepare(train, pot), 1 + pot.alpha_scalar_moments)
    A, b, _ = normal_equations(pot, batches)
    theta = solve_linear(A, b)
    pot.species_coeffs, pot.moment_coeffs = theta[:1], theta[1:]
    loss_terms(pot, batches)                                   # compile
    t = time.perf_counter(); c = cpu_time()
    loss_terms(pot, batches, radial_grad=True)
    tangent = (time.perf_counter() - t, cpu_time() - c)
    t = time.perf_counter(); c = cpu_time()
    loss_terms(pot, batches, radial_grad=False)               # one force evaluation of the set
    one = (time.perf_counter() - t, cpu_time() - c)
    n = pot.radial_coeffs.size
    return tangent, (one[0] * (n + 1), one[1] * (n + 1)), n


def default_cli(d, test):
    """`mtplib train` with default settings in a fresh process: CPU time and test errors."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "mtplib", "train", "--level", "16", str(d / "train.extxyz"),
               "--out", str(Path(tmp) / "cu16.mtp")]
        subprocess.run(cmd + ["--max-iter", "1"], check=True, capture_output=True)  # compile
        c0, t0 = cpu_time(), time.perf_counter()
        proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
        cpu, wall = cpu_time() - c0, time.perf_counter() - t0
        stop = [line for line in proc.stdout.splitlines() if "stopped after" in line]
        e, f = test_errors(MTPotential.load(Path(tmp) / "cu16.mtp"), test)
    print(f"mtplib train, defaults ({' '.join(cmd[3:6])} DATA --out X): CPU {cpu:.1f} s, wall "
          f"{wall:.1f} s; test E RMSE {e:.4f} meV/atom, F RMSE {f:.5f} eV/Å  (MLIP-2: 0.138 "
          f"meV/atom, 0.00561 eV/Å in 1414 CPU-s); {stop[0].strip() if stop else 'no stop line'}"
          f"; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


def curve(train, test, init, max_iter):
    """Loss and test errors against iteration and CPU time of one fit without early stop."""
    fit(train[:4], init, max_iter=1, log=None)                 # compile
    cpu, history = [], []
    c0 = cpu_time()

    def log(msg):
        if msg.startswith("iter"):
            cpu.append(cpu_time() - c0)

    fit(train, init, seed=0, max_iter=max_iter, tol=0.0, log=log, history=history)
    print(f"{'iteration':>9s} {'CPU s':>7s} {'loss':>12s} {'test E meV/atom':>16s} {'test F eV/Å':>12s}")
    for h, t in zip(history, cpu):
        k = h["iteration"]
        if k in (3, 5, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100) or k == len(history):
            pot = init.copy()
            pot.radial_coeffs = h["radial_coeffs"]
            e, f = test_errors(fit(train, pot, max_iter=0, warm_start=True, log=None), test)
            print(f"{k:9d} {t:7.1f} {h['loss']:12.4e} {e:16.4f} {f:12.5f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data")
    ap.add_argument("--max-iter", type=int, default=10)
    ap.add_argument("--scan-seeds", type=int, default=20)
    ap.add_argument("--defaults-only", action="store_true", help="only the default CLI run")
    ap.add_argument("--curve", type=int, default=0, help="test errors against iterations")
    ap.add_argument("--no-defaults", action="store_true", help="skip the default CLI run")
    ap.add_argument("--scan-max-iter", type=int, default=0,
                    help="0: fast mode (random radial coefficients + linear solve)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    d = data_dir(args.data)
    train = read(d / "train.extxyz", ":")
    test = read(d / "test.extxyz", ":")
    init = MTPotential.from_level(16, ["Cu"], 2.0, 5.0, 8)
    if args.curve:
        return curve(train, test, init, args.curve)
    if not args.no_defaults:
        default_cli(d, test)
        if args.defaults_only:
            return
    print(f"Cu EMT: {len(train)} train / {len(test)} test, level 16, "
          f"{init.parameter_count} parameters, threads {os.environ.get('NUMBA_NUM_THREADS', 'default')}")

    # compile outside the timings
    fit(train[:4], init, max_iter=1, log=None)

    t0, c0 = time.perf_counter(), cpu_time()
    pot = fit(train, init, seed=0, max_iter=args.max_iter, log=print)
    wall, cpu = time.perf_counter() - t0, cpu_time() - c0
    e, f = test_errors(pot, test)
    print(f"\nfit: wall {wall:.1f} s, CPU {cpu:.1f} s; test E RMSE {e:.4f} meV/atom, "
          f"F RMSE {f:.5f} eV/Å  (MLIP-2: 0.138 meV/atom, 0.00561 eV/Å in 1414 CPU-s)")

    tangent, fd, n = gradient_methods(train, init)
    print(f"radial gradient ({n} coefficients, 200 configurations): forward-over-reverse "
          f"{tangent[0]:.2f} s wall / {tangent[1]:.2f} CPU-s; forward differences of the forces "
          f"({n + 1} evaluations) {fd[0]:.2f} s / {fd[1]:.2f} CPU-s: {fd[1] / tangent[1]:.1f}x")

    if args.scan_seeds:
        mode = "fast mode" if args.scan_max_iter == 0 else f"max_iter {args.scan_max_iter}"
        with tempfile.TemporaryDirectory() as tmp:
            t0, c0 = time.perf_counter(), cpu_time()
            rows = scan(train, init, list(range(args.scan_seeds)), tmp, test_images=test,
                        optimize_radial=args.scan_max_iter > 0, max_iter=args.scan_max_iter,
                        log=None)
            wall, cpu = time.perf_counter() - t0, cpu_time() - c0
        best = rows[0]
        print(f"scan of {args.scan_seeds} seeds ({mode}, incl. test evaluation): wall {wall:.1f} s, "
              f"CPU {cpu:.1f} s; best seed {best['seed']}: test F RMSE "
              f"{best['test_forces_rmse']:.5f} eV/Å, E RMSE {best['test_energy_per_atom_rmse']:.4f} "
              f"meV/atom; worst F RMSE {rows[-1]['test_forces_rmse']:.5f}")


if __name__ == "__main__":
    main()
