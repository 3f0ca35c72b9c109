"""Sparsification of the demo's active-learning training set (Novikov et al. 2021, sec. 5.2.1).

    python benchmarks/bench_sparsify_demo.py --data RESULTS/al/iter_NNN/train.extxyz \\
        [--test RESULTS/labels/test.extxyz] [--isolated RESULTS/labels/isolated.json] \\
        [--candidates RESULTS/al/iter_NNN/candidates.extxyz ...] [--config config/config.yaml] \\
        [--modes neighborhood configuration] [--tol 1e-7] [--out-dir /tmp/bench_sparsify_demo]

The final active-learning training set (`--data`) is fitted with the demo's final seed scan
(fit.seeds, active_learning.final_max_iter, the fit and mtp sections of `--config`) against
the held-out `--test` set of stage 2, as the demo's final fit is (without `--test`, `--data`
is split by fit.test_fraction and fit.split_seed, as older demos split it). That fit's active
set is sparsified by the CLI verb (`python -m mtplib sparsify POT TRAIN OUT --mode M`), and
the kept configurations are fitted again with the same seed scan, as is a random subset of
the kept size (a control). Prints the configurations before/after and the test errors (RMSE:
energy per atom, forces) on the test set and, with `--candidates`, on the loop's MD
candidates that are not in the training set, relabelled with EMT (the demo's reference).
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]   # this checkout's mtplib and glue

from mtpflow.active import isolated_energies
from mtpflow.settings import Settings, load_config

from mtplib.active.testing import label_emt
from mtplib.analysis.errors import error_metrics
from mtplib.cli import main as mtplib_main
from mtplib.io import read_dataset, write_dataset
from mtplib.training.scan import best_of_seeds


def test_errors(pot, images):
    m = error_metrics(images, pot.evaluate_many(images))
    return m["energy_per_atom"]["rmse"], m["forces"]["rmse"]      # meV/atom, eV/Å


def unseen_candidates(files, train, species):
    """The candidates of `files` whose positions match no training configuration, relabelled
    with EMT."""
    seen = {(len(a), a.positions.round(6).tobytes()) for a in train}
    out = []
    for f in files:
        for atoms in read_dataset(f, species=species):
            if (len(atoms), atoms.positions.round(6).tobytes()) not in seen:
                out.append(label_emt(atoms))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="the final AL training set (extxyz)")
    ap.add_argument("--test", help="the held-out test set (results/labels/test.extxyz); "
                    "without it, --data is split as fit.test_fraction, fit.split_seed say")
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--isolated", help="isolated.json of stage 2")
    ap.add_argument("--candidates", nargs="*", default=[], help="AL candidate files (EMT test set)")
    ap.add_argument("--modes", nargs="+", default=["neighborhood", "configuration"])
    ap.add_argument("--tol", type=float, help="override fit.tol (1e-7: every fit runs to max_iter)")
    ap.add_argument("--out-dir", default="/tmp/bench_sparsify_demo")
    args = ap.parse_args()
    settings = Settings.from_config(load_config(args.config), checked=True)
    fs, elements = settings.fit, settings.elements
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = read_dataset(args.data, species=elements)
    if args.test:
        train, test = data, read_dataset(args.test, species=elements)
    else:
        train, test = fs.split(data)
    tests = {"held-out test": test}
    if args.candidates:
        tests["EMT-relabelled candidates"] = unseen_candidates(args.candidates, data, elements)
    kwargs = dict(fs.fit_kwargs(max_iter=settings.active_learning.final_max_iter),
                  isolated_energies=isolated_energies(args.isolated), log=None)
    if args.tol is not None:
        kwargs["tol"] = args.tol
    init = settings.mtp.initial_potential(elements)
    how = args.test or f"test_fraction {fs.test_fraction}, split_seed {fs.split_seed}"
    print(f"{args.data}: {len(data)} configurations -> {len(train)} train, {len(test)} test "
          f"({how}); level "
          f"{settings.mtp.level}, {init.parameter_count} parameters; seeds {fs.seed_list}, "
          f"max_iter {kwargs['max_iter']}, tol {kwargs['tol']:g}, metric {fs.metric}")
    for name, images in tests.items():
        print(f"test set '{name}': {len(images)} configurations")

    def scan(images):
        t = time.perf_counter()
        _, seed, pot = best_of_seeds(images, init, fs.seed_list, fs.metric,
                                         test_images=test, **kwargs)
        return pot, seed, time.perf_counter() - t

    full, seed, secs = scan(train)
    print(f"seed scan on all {len(train)}: best seed {seed}, {secs:.0f} s")
    full_file, train_file = out / "full.mtp", out / "train.extxyz"
    full.save(full_file)
    write_dataset(train_file, train, species=elements)
    rows = [("all configurations", len(train), full)]
    for mode in args.modes:
        kept_file = out / f"kept_{mode}.extxyz"
        kept_file.unlink(missing_ok=True)
        cmd = ["sparsify", str(full_file), str(train_file), str(kept_file), "--mode", mode,
               "--species", *elements]
        print("python -m mtplib " + " ".join(cmd))
        if mtplib_main(cmd) != 0:
            raise SystemExit(f"mtplib sparsify ({mode}) failed")
        kept = read_dataset(kept_file, species=elements)
        if len(kept) == len(train):     # nothing dropped: the same fit
            rows.append((f"sparsified ({mode})", len(kept), full))
            continue
        pot, seed, secs = scan(kept)
        print(f"seed scan on the {len(kept)} kept ({mode}): best seed {seed}, {secs:.0f} s")
        rows.append((f"sparsified ({mode})", len(kept), pot))
        # control: a random subset of the same size
        pick = np.sort(np.random.default_rng(0).choice(len(train), len(kept), replace=False))
        pot, seed, secs = scan([train[k] for k in pick])
        rows.append((f"random {len(kept)} (control)", len(kept), pot))
    print("\nRMSE on the test sets: energy (meV/atom), forces (eV/Å)")
    print(f"{'fit':28s} {'configs':>7s}" + "".join(f" | {name[:24]:>24s}" for name in tests))
    for name, n, pot in rows:
        cells = "".join(" | {:>12.3f} {:>11.4f}".format(*test_errors(pot, images))
                        for images in tests.values())
        print(f"{name:28s} {n:7d}{cells}")


if __name__ == "__main__":
    main()
