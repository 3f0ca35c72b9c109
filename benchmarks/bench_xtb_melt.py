#!/usr/bin/env python3
"""Does the GFN1-xTB HfO2 melt hold its density under NPT? (issue 19)

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/bench_xtb_melt.py [--atoms 96] [--steps 150]

The amorphous box of config/examples/hfo2_tblite.yaml (HfO2 at 9.0 g/cm³, the example's
per-pair minimum distances, seed 2 as its validation boxes), then MD with tblite (the example's kwargs) in the
workflow's ensemble "npt" (`mtplib.active.md.make_integrator`: isotropic MTK, 3000 K, 0 GPa,
1 fs, tdamp 100 fs, pdamp 1000 fs), Maxwell-Boltzmann start at 3000 K. Prints step,
temperature, volume per atom, density and potential energy every --every steps: the
validation's 48-atom reference expanded from 12.95 to 31 Å³/atom in 1 ps; this measures
whether a 96-atom box (10.3 Å, above the Γ-only cutoff of 10 Å) does too.
"""
import argparse
import time

import numpy as np
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

from mtplib.active.md import make_integrator
from mtplib.labeling.registry import calculator_factory
from mtplib.structures import amorphous_box

KWARGS = {"method": "GFN1-xTB", "electronic_temperature": 300.0, "max_iterations": 250,
          "verbosity": 0}
AMU_PER_A3_TO_G_PER_CM3 = 1.66053906660


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--atoms", type=int, default=96)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--temperature", type=float, default=3000.0)
    ap.add_argument("--seed", type=int, default=2)
    args = ap.parse_args()
    atoms = amorphous_box({"Hf": 1, "O": 2}, 9.0, n_atoms=args.atoms, seed=args.seed,
                          min_distance=1.8,
                          pair_min_distance={"Hf-Hf": 2.8, "Hf-O": 1.85, "O-O": 2.2})
    atoms.calc = calculator_factory("tblite", KWARGS)()
    rng = np.random.default_rng(args.seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=args.temperature, rng=rng)
    Stationary(atoms)
    dyn = make_integrator(atoms, "npt", 1.0, args.temperature, rng)
    mass = atoms.get_masses().sum()
    t0 = time.process_time()

    def report(step):
        v = atoms.get_volume()
        print(f"step {step:5d}  T {atoms.get_temperature():7.1f} K  V/atom {v / len(atoms):6.2f} Å³"
              f"  density {mass * AMU_PER_A3_TO_G_PER_CM3 / v:5.2f} g/cm³  "
              f"E {atoms.get_potential_energy():.3f} eV  CPU {time.process_time() - t0:.0f} s",
              flush=True)

    print(f"{len(atoms)} atoms, box {atoms.cell.lengths().round(2)} Å, integrator "
          f"{type(dyn).__name__}", flush=True)
    report(0)
    for step in range(args.every, args.steps + 1, args.every):
        dyn.run(args.every)
        report(step)


if __name__ == "__main__":
    main()
