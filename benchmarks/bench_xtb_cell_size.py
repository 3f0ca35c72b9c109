#!/usr/bin/env python3
"""Is the validation's 48-atom xTB melt the same force field as the 96-atom labels the MTP
learned? Γ-only xTB in a 9.2 Å box against the same structure doubled.

Protocol (fixed before the first run): frames of a finished run's reference melt
(results/validation/<scenario>/reference.extxyz: xTB MD of the 48-atom box), the first fifth
dropped as the RDF comparison drops it, then `--frames` evenly spaced. Each frame is
evaluated by the run's reference (the config's `reference`, tblite GFN1-xTB at the Γ point)
as it is (48 atoms) and as its 2x1x1 supercell (96 atoms, 18 Å along a); the final MTP
evaluates it too (a local potential: the same in both cells). Reported: per frame and over
all, the force RMSE between the two xTB cells (over the 48 original atoms), the MTP's force
RMSE against each, and the energy per atom differences. If xTB's 48- and 96-atom forces
differ by as much as the MTP's error, the 48-atom reference MD is a biased target for the
RDF comparison.

    python benchmarks/bench_xtb_cell_size.py RUN_DIR [--scenario amorphous_3000K] [--frames 8]
        [--configfile config/examples/hfo2_tblite.yaml]
"""
import argparse
from pathlib import Path

import numpy as np
import yaml
from ase.io import read

from mtplib import MTPotential
from scripts.mtpflow.settings import Settings, validate_config


def rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="the run's directory (results/ inside)")
    p.add_argument("--scenario", default="amorphous_3000K")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--configfile", type=Path, default=Path("config/examples/hfo2_tblite.yaml"))
    args = p.parse_args()
    config = validate_config(yaml.safe_load(args.configfile.read_text()))
    settings = Settings.from_config(config, checked=True)
    reference = settings.reference
    res = args.run / "results"
    pot = MTPotential.load(res / "final" / "potential.mtp", species=config["elements"])
    frames = read(res / "validation" / args.scenario / "reference.extxyz", ":")
    frames = frames[len(frames) // 5:]
    picks = np.linspace(0, len(frames) - 1, args.frames).round().astype(int)
    print(f"{args.scenario}: {len(picks)} frames of the xTB reference MD "
          f"({len(frames[0])} atoms), reference {reference.name}")
    print("| frame | xTB 48 vs 96: F RMSE eV/Å | dE meV/atom | MTP vs xTB 48 | MTP vs xTB 96 |")
    print("|---|---|---|---|---|")
    totals = {"x": [], "m48": [], "m96": [], "de": []}
    for k in picks:
        atoms = frames[k].copy()
        atoms.info.clear()
        n = len(atoms)
        results = {}
        for label, cell in (("48", atoms.copy()), ("96", atoms.repeat((2, 1, 1)))):
            cell.calc = reference.calculator_factory(symbols=cell.get_chemical_symbols())()
            results[label] = (cell.get_potential_energy() / len(cell), cell.get_forces()[:n])
        mtp = pot.evaluate(atoms)["forces"]
        x = rmse(results["48"][1], results["96"][1])
        de = 1000 * (results["48"][0] - results["96"][0])
        m48, m96 = rmse(mtp, results["48"][1]), rmse(mtp, results["96"][1])
        for key, value in (("x", x), ("m48", m48), ("m96", m96), ("de", de)):
            totals[key].append(value)
        print(f"| {k} | {x:.3f} | {de:+.1f} | {m48:.3f} | {m96:.3f} |", flush=True)
    rms = {k: float(np.sqrt(np.mean(np.square(v)))) for k, v in totals.items()}
    print(f"| all (RMS) | {rms['x']:.3f} | {rms['de']:.1f} | {rms['m48']:.3f} | "
          f"{rms['m96']:.3f} |")


if __name__ == "__main__":
    main()
