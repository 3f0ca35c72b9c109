#!/usr/bin/env python3
"""How small a periodic cell a Γ-only reference can label: GFN1-xTB (tblite) energy per atom
and largest force of monoclinic HfO2 at its ideal positions (config/examples/hfo2_tblite.yaml)
in supercells of growing smallest perpendicular height, diagonal and not (the largest height
for each atom count up to 96, from integer supercell matrices with entries -2..2). The
figures behind reference.gamma_only_min_height and the config warning it controls.

    OMP_NUM_THREADS=1 python benchmarks/bench_gamma_cells.py
"""
import time
from pathlib import Path

import numpy as np
import yaml
from ase.build import make_supercell

from mtplib.structures import build_phase, cell_heights

ROOT = Path(__file__).resolve().parents[1]
SUPERCELLS = [np.eye(3, dtype=int), [[2, 0, 0], [0, 2, 0], [0, 0, 1]],
              [[-1, -1, 0], [-1, 0, -1], [0, -1, -1]], [[-1, -1, -1], [-1, 1, 0], [0, -1, 1]],
              [[-1, -1, -1], [-1, 0, 1], [-1, 1, -1]], [[-2, 0, -1], [-1, -1, 1], [-1, 1, 1]],
              [[2, 0, 0], [0, 2, 0], [0, 0, 2]]]


def main():
    from tblite.ase import TBLite

    config = yaml.safe_load((ROOT / "config" / "examples" / "hfo2_tblite.yaml").read_text())
    unit = build_phase("monoclinic", config["phases"]["monoclinic"])
    rows = []
    for matrix in SUPERCELLS:
        atoms = make_supercell(unit, np.array(matrix))
        atoms.calc = TBLite(**config["reference"]["kwargs"])
        start = time.process_time()
        energy = atoms.get_potential_energy() / len(atoms)
        force = np.linalg.norm(atoms.get_forces(), axis=1).max()
        rows.append((len(atoms), cell_heights(atoms.cell).min(), energy, force,
                     time.process_time() - start, np.array(matrix).tolist()))
    reference = rows[-1][2]
    print("| atoms | smallest height (Å) | E/atom (eV) | above the 96-atom cell (meV/atom) "
          "| max force (eV/Å) | CPU-s | supercell matrix |\n|---|---|---|---|---|---|---|")
    for n, height, energy, force, cpu, matrix in sorted(rows, key=lambda r: r[1]):
        print(f"| {n} | {height:.2f} | {energy:.4f} | {1000 * (energy - reference):.0f} "
              f"| {force:.3f} | {cpu:.1f} | {matrix} |")


if __name__ == "__main__":
    main()
