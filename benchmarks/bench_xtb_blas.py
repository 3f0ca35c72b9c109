#!/usr/bin/env python3
"""tblite's xTB on the BLAS its PyPI wheel bundles (netlib's reference BLAS and LAPACK) against
OpenBLAS loaded in front of it (reference.blas: 'bundled' against 'auto'), in the same run.

HfO2 as the example labels it: the monoclinic 2x2x2 cell (96 atoms) rattled by 0.05 Å, and
random amorphous boxes of 96 and 48 atoms at 7.2 g/cm³ (mtplib.structures.amorphous_box).
Each round runs one process per BLAS, in alternating order (a process loads one BLAS); each
computes energy, forces and stress of the same `--frames` structures of each kind with one
calculator, one thread, as a labelling part does. Reported: the median seconds per structure
of each kind and BLAS, their ratio, and the largest differences of the results between the two.

    python benchmarks/bench_xtb_blas.py [--rounds 3] [--frames 3] [--blas auto]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MONOCLINIC = dict(symbols=["Hf", "O", "O"],
                  basis=[[0.2759, 0.0412, 0.2078], [0.0737, 0.3318, 0.3474],
                         [0.4491, 0.7587, 0.4800]],
                  spacegroup=14, cellpar=[5.117, 5.175, 5.291, 90, 99.22, 90])
BOX = dict(composition={"Hf": 1, "O": 2}, density=7.2, min_distance=1.8,
           pair_min_distance={"Hf-Hf": 2.8, "Hf-O": 1.85, "O-O": 2.2})


def structures(frames):
    from ase.spacegroup import crystal

    from mtplib.structures import amorphous_box
    out = {}
    base = crystal(**MONOCLINIC).repeat((2, 2, 2))
    rng = np.random.default_rng(0)
    out["monoclinic 96"] = []
    for _ in range(frames):
        a = base.copy()
        a.positions += rng.normal(0.0, 0.05, a.positions.shape)
        out["monoclinic 96"].append(a)
    for n in (96, 48):
        out[f"amorphous {n}"] = [amorphous_box(n_atoms=n, seed=k, **BOX) for k in range(frames)]
    return out


def child(blas, frames, out):
    from mtplib.labeling.registry import blas_in_use, calculator_factory
    calc = calculator_factory("tblite", {"method": "GFN1-xTB", "verbosity": 0}, blas=blas)()
    result = {"blas": blas_in_use(), "times": {}, "energy": {}, "forces": {}, "stress": {}}
    for kind, atoms_list in structures(frames).items():
        times, e, f, s = [], [], [], []
        for atoms in atoms_list:
            atoms.calc = calc
            t = time.perf_counter()
            e.append(atoms.get_potential_energy())
            f.append(atoms.get_forces().tolist())
            s.append(atoms.get_stress().tolist())
            times.append(time.perf_counter() - t)
        result["times"][kind], result["energy"][kind] = times, e
        result["forces"][kind], result["stress"][kind] = f, s
    Path(out).write_text(json.dumps(result))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--frames", type=int, default=3)
    p.add_argument("--blas", default="auto", help="the optimized side (reference.blas)")
    p.add_argument("--child", nargs=2, metavar=("BLAS", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child[0], args.frames, args.child[1])
        return
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    runs = {"bundled": [], args.blas: []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            order = ["bundled", args.blas] if r % 2 == 0 else [args.blas, "bundled"]
            for blas in order:
                out = Path(tmp) / f"{blas.replace('/', '_')}_{r}.json"
                subprocess.run([sys.executable, __file__, "--frames", str(args.frames),
                                "--child", blas, str(out)], env=env, check=True)
                runs[blas].append(json.loads(out.read_text()))
    fast = runs[args.blas][0]["blas"]
    print(f"rounds {args.rounds}, {args.frames} structures of each kind per process, one thread; "
          f"optimized side: {fast}; load average {os.getloadavg()[0]:.2f}")
    print("| structures | bundled s/structure | optimized s/structure | ratio | max dE eV | "
          "max dF eV/Å | max dS eV/Å³ |")
    print("|---|---|---|---|---|---|---|")
    for kind in runs["bundled"][0]["times"]:
        slow = np.median([t for run in runs["bundled"] for t in run["times"][kind]])
        quick = np.median([t for run in runs[args.blas] for t in run["times"][kind]])
        a, b = runs["bundled"][0], runs[args.blas][0]
        de = np.max(np.abs(np.subtract(a["energy"][kind], b["energy"][kind])))
        df = np.max(np.abs(np.subtract(a["forces"][kind], b["forces"][kind])))
        ds = np.max(np.abs(np.subtract(a["stress"][kind], b["stress"][kind])))
        print(f"| {kind} | {slow:.2f} | {quick:.2f} | {slow / quick:.2f} | {de:.1e} | {df:.1e} | "
              f"{ds:.1e} |")


if __name__ == "__main__":
    main()
