#!/usr/bin/env python3
"""Where is GFN1-xTB's HfO2 melt at zero pressure? (issue 19)

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/bench_xtb_eos.py FRAMES.extxyz
        [--scenario amorphous] [--picks 2] [--densities 9,8,7,6] [--temperature 3000]

Takes melt configurations labelled by xTB during active learning (FRAMES: e.g. a run's
results/al/iter_NNN/train.extxyz; those whose info 'scenario' starts with --scenario),
rescales each affinely to the given densities (g/cm³), and prints tblite's virial pressure,
the ideal-gas (kinetic) pressure at --temperature and the energy. The affine rescaling does
not let the liquid relax, so the zero crossing of the total pressure is an estimate of the
density at which an NPT run at 0 GPa settles, not a measurement of it.
"""
import argparse

import numpy as np
from ase import units
from ase.io import read

from mtplib.labeling.registry import calculator_factory

KWARGS = {"method": "GFN1-xTB", "electronic_temperature": 300.0, "max_iterations": 250,
          "verbosity": 0}
AMU_PER_A3_TO_G_PER_CM3 = 1.66053906660


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("frames")
    ap.add_argument("--scenario", default="amorphous")
    ap.add_argument("--picks", type=int, default=2)
    ap.add_argument("--densities", default="9,8,7,6")
    ap.add_argument("--temperature", type=float, default=3000.0)
    args = ap.parse_args()
    melt = [a for a in read(args.frames, ":")
            if str(a.info.get("scenario", "")).startswith(args.scenario)]
    if not melt:
        raise SystemExit(f"{args.frames}: no configuration with info 'scenario' starting with "
                         f"{args.scenario!r}")
    picks = [melt[(k + 1) * len(melt) // args.picks - 1] for k in range(args.picks)]
    calc = calculator_factory("tblite", KWARGS)()
    print(f"{len(melt)} melt configurations; picked {args.picks} of them")
    print("pick  density g/cm³  virial GPa  kinetic GPa  total GPa  energy eV")
    for k, start in enumerate(picks):
        rho0 = start.get_masses().sum() * AMU_PER_A3_TO_G_PER_CM3 / start.get_volume()
        for rho in (float(x) for x in args.densities.split(",")):
            atoms = start.copy()
            atoms.set_cell(start.cell.array * (rho0 / rho) ** (1 / 3), scale_atoms=True)
            atoms.calc = calc
            virial = -np.trace(atoms.get_stress(voigt=False)) / 3 / units.GPa
            kinetic = len(atoms) * units.kB * args.temperature / atoms.get_volume() / units.GPa
            print(f"{k:4d}  {rho:13.1f}  {virial:10.2f}  {kinetic:11.2f}  {virial + kinetic:9.2f}"
                  f"  {atoms.get_potential_energy():9.2f}", flush=True)


if __name__ == "__main__":
    main()
