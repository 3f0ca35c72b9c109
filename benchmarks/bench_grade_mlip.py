"""mtplib's extrapolation grade against MLIP-2's `mlp calc-grade` on the Cu benchmark (issue #24).

    PYTHONPATH=. python benchmarks/bench_grade_mlip.py [--potential POT.mtp] [--data DIR]
        [--mlp PATH] [--work DIR]

DIR holds `train.extxyz` (200 cells) and `test.extxyz` (1000 cells) from
`/work/shared/bench/make_cu_emt.py DIR`. Both codes build the configuration-mode active set
from the training cells with the SAME potential file and grade the test cells. Prints each
code's min / median / max grade and count of cells with gamma > 1, the Spearman rank
correlation of the two grade vectors, the share of cells on the same side of gamma = 1,
and the composition of both active sets (grades saved to WORK/grades.npz). Without
--potential a level-16 potential (min_dist 2, max_dist 5, radial basis size 8) is trained by
`mtplib train --max-iter 10` into the work folder. Without `mlp` (not on PATH and no --mlp) only mtplib's column.
Set PYTHONPATH to the checkout whose mtplib is measured; it is printed.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.stats

import mtplib
from mtplib.active import ActiveSet
from mtplib.io import read_dataset, write_dataset
from mtplib.potential import MTPotential

SPECIES = ["Cu"]


def checkout_commit(path):
    try:
        out = subprocess.run(["git", "-C", str(path), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"


def train_potential(data, work):
    pot = work / "cu16_mtplib.mtp"
    if not pot.exists():
        subprocess.run([sys.executable, "-m", "mtplib", "train", "--level", "16", "--min-dist", "2",
                        "--max-dist", "5", "--radial-basis-size", "8", "--max-iter", "10",
                        "--seed", "0", "--out", str(pot), str(data / "train.extxyz"),
                        "--species", *SPECIES], check=True)
    return pot


def mtplib_grades(pot_path, train, test):
    pot = MTPotential.load(pot_path, species=SPECIES)
    t = time.perf_counter()
    with warnings.catch_warnings():      # underdetermined / closer than min_dist: both codes alike
        warnings.simplefilter("ignore")
        aset = ActiveSet.from_training(pot, train, where="train.extxyz")
        t_build = time.perf_counter() - t
        gamma = aset.grade_many([a.copy() for a in test], where="test.extxyz")
        t_grade = time.perf_counter() - t - t_build
    cells = len(aset.member_configurations)
    return gamma, dict(build_s=t_build, grade_s=t_grade, cells=cells, virtual=aset.n_virtual,
                       size=aset.size, slots=aset.members[:, 0])


def mlp_grades(mlp, pot_path, data, work):
    for name in ("train", "test"):
        cfg = work / f"{name}.cfg"
        if not cfg.exists():
            write_dataset(cfg, read_dataset(data / f"{name}.extxyz", species=SPECIES),
                          species=SPECIES)
    out = work / "test_graded_mlp.cfg"
    t = time.perf_counter()
    run = subprocess.run([mlp, "calc-grade", str(Path(pot_path).resolve()), "train.cfg", "test.cfg",
                          out.name, "--als-filename=state_mlp.als"], cwd=work,
                         capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if run.returncode != 0:
        sys.exit(f"{mlp} calc-grade failed ({run.returncode}): {run.stderr.strip()[-300:]}")
    gamma = np.array([float(g) for g in re.findall(r"^\s*Feature\s+MV_grade\s+(\S+)",
                                                   out.read_text(), re.M)])
    return gamma, dict(calc_grade_s=elapsed)


def mlp_active_set(als, train, size):
    """Training-cell index of each of the `size` slots of MLIP-2's ALS file (-1: virtual).

    The file (`MaxvolSelection::Save`): the potential, '^', 4 weights, '#', A and A^-1
    (binary), then 'slot configuration-number' lines and the configurations (a virtual
    slot's is empty, Size 0), matched here to the training cells by their positions."""
    data = als.read_bytes()
    start = data.index(b"\n#", data.index(b"\n^")) + 2 + 2 * size * size * 8
    lines = data[start:].decode().split("\n")
    numbers = [int(line.split()[1]) for line in lines[1:size + 1]]
    blocks = "\n".join(lines[size + 1:]).split("BEGIN_CFG")[1:]
    cells = []
    for block in blocks:
        rows = block.split("\n")
        n_atoms = int(rows[rows.index(next(r for r in rows if r.strip() == "Size")) + 1])
        if n_atoms == 0:
            cells.append(-1)
            continue
        k = next(i for i, r in enumerate(rows) if "AtomData:" in r)
        pos = np.array([r.split()[2:5] for r in rows[k + 1:k + 1 + n_atoms]], dtype=float)
        match = [c for c, atoms in enumerate(train)
                 if len(atoms) == n_atoms and np.allclose(atoms.positions, pos, atol=1e-8)]
        cells.append(match[0] if match else -2)
    return np.array([cells[k] for k in numbers])


def summary(name, gamma):
    return (f"{name:8s} min {gamma.min():8.4g}  median {np.median(gamma):8.4g}  "
            f"max {gamma.max():8.4g}  gamma > 1: {(gamma > 1).sum():4d} of {len(gamma)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--potential", help="level-16 .mtp graded by both codes")
    ap.add_argument("--data", default="/work/ext/cu_bench",
                    help="folder with train.extxyz and test.extxyz (make_cu_emt.py)")
    ap.add_argument("--mlp", default=shutil.which("mlp"), help="MLIP-2's mlp binary")
    ap.add_argument("--work", default="benchmarks/out/bench_grade_mlip",
                    help="scratch folder (.cfg copies, MLIP-2's state, a trained potential)")
    args = ap.parse_args()
    data, work = Path(args.data), Path(args.work)
    for name in ("train.extxyz", "test.extxyz"):
        if not (data / name).exists():
            sys.exit(f"{data / name}: no such file (make it with "
                     f"/work/shared/bench/make_cu_emt.py {data})")
    work.mkdir(parents=True, exist_ok=True)
    pot_path = Path(args.potential) if args.potential else train_potential(data, work)
    if not pot_path.exists():
        sys.exit(f"{pot_path}: no such potential file")
    root = Path(mtplib.__file__).resolve().parent.parent
    print(f"mtplib from {root} (commit {checkout_commit(root)}); potential {pot_path}; "
          f"load average {os.getloadavg()[0]:.1f}")
    train = read_dataset(data / "train.extxyz", species=SPECIES)
    test = read_dataset(data / "test.extxyz", species=SPECIES)
    ours, info = mtplib_grades(pot_path, train, test)
    print(f"mtplib active set: {info['cells']} training cells, {info['virtual']} virtual rows of "
          f"{info['size']}; built in {info['build_s']:.1f} s, {len(test)} cells graded in "
          f"{info['grade_s']:.1f} s")
    print(summary("mtplib", ours))
    if not args.mlp:
        print("MLIP-2: skipped (no `mlp` on PATH and no --mlp)")
        return
    theirs, minfo = mlp_grades(args.mlp, pot_path, data, work)
    if len(theirs) != len(ours):
        sys.exit(f"{work / 'test_graded_mlp.cfg'}: {len(theirs)} MV_grade features for "
                 f"{len(ours)} test cells")
    print(summary("MLIP-2", theirs) + f"  (calc-grade {minfo['calc_grade_s']:.1f} s)")
    slots = mlp_active_set(work / "state_mlp.als", train, info["size"])
    real = set(slots[slots >= 0].tolist())
    print(f"MLIP-2 active set: {len(real)} training cells, {(slots == -1).sum()} virtual rows; "
          f"{len(real & set(info['slots'].tolist()))} cells in common with mtplib's; "
          f"slot by slot identical: {bool(np.array_equal(slots, info['slots']))}")
    rho = scipy.stats.spearmanr(ours, theirs).statistic
    same_side = np.mean((ours > 1) == (theirs > 1))
    rel = np.abs(ours - theirs) / np.maximum(theirs, 1e-12)
    np.savez(work / "grades.npz", mtplib=ours, mlip2=theirs)
    print(f"Spearman {rho:.5f}   same side of gamma = 1: {100 * same_side:.1f} %   "
          f"gamma > 1 counts: mtplib {(ours > 1).sum()}, MLIP-2 {(theirs > 1).sum()} "
          f"(difference {(ours > 1).sum() - (theirs > 1).sum():+d})   "
          f"max relative grade difference {rel.max():.2e}")


if __name__ == "__main__":
    main()
