#!/usr/bin/env python3
"""How far does a potential's 3000 K HfO2 melt run before gamma_break, under NPT and NVT? (issue 19)

    PYTHONPATH=. python benchmarks/bench_melt_ensembles.py ITER_DIR [--seeds 6] [--steps 3000]
        [--density 7.2] [--temperature 3000] [--close-approach MARGIN]

ITER_DIR is an active-learning iteration folder of the HfO2 example (its potential.mtp and
potential.als.npz). The example's 96-atom amorphous box (seed 0, the per-pair minimum
distances of config/examples/hfo2_tblite.yaml) at --density, a damped start of 200 steps
(friction 0.1/fs), then --steps under "npt" (isotropic MTK, 0 GPa) or "nvt" (Langevin,
0.01/fs), graded every step in the potential's active set (gamma_select 2, gamma_break 10).
With --close-approach, also the close-approach criterion (a candidate within MARGIN Å of the
potential's min_dist, a stop below it), as active_learning.close_approach. Prints per seed
and ensemble the steps run, why it stopped (extrapolation, or blow-up: atoms closer than
0.5 Å), the final density and the number of graded frames above gamma_select.
"""
import argparse
from pathlib import Path

import numpy as np

from mtplib import MTPotential
from mtplib.active import ActiveSet, Thresholds, run_md
from mtplib.active.criteria import CloseApproach
from mtplib.structures import amorphous_box

AMU_PER_A3_TO_G_PER_CM3 = 1.66053906660


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("iteration")
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--density", type=float, default=7.2)
    ap.add_argument("--temperature", type=float, default=3000.0)
    ap.add_argument("--close-approach", type=float, default=None)
    args = ap.parse_args()
    folder = Path(args.iteration)
    pot = MTPotential.load(folder / "potential.mtp", species=["Hf", "O"])
    aset = ActiveSet.load(folder / "potential.als.npz", pot)
    box = amorphous_box({"Hf": 1, "O": 2}, args.density, 96, 0, 1.8,
                        pair_min_distance={"Hf-Hf": 2.8, "Hf-O": 1.85, "O-O": 2.2})
    mass = box.get_masses().sum() * AMU_PER_A3_TO_G_PER_CM3
    criteria = () if args.close_approach is None else (
        CloseApproach(pot.min_dist + args.close_approach, pot.min_dist),)
    for ensemble in ("npt", "nvt"):
        for seed in range(args.seeds):
            atoms = box.copy()
            res = run_md(pot, atoms, active_set=aset, ensemble=ensemble,
                         temperature=args.temperature, steps=args.steps, seed=seed,
                         equilibration_steps=200, equilibration_friction=0.1, log=None,
                         thresholds=Thresholds(gamma_select=2.0, gamma_break=10.0, interval=1,
                                               criteria=criteria))
            gammas = np.array([g for _, g in res.history])
            print(f"{ensemble} seed {seed}: {res.steps} of {200 + args.steps} steps, "
                  f"{res.reason} ({res.message}); density {mass / atoms.get_volume():.2f} g/cm³; "
                  f"{int((gammas > 2).sum())} graded frames above gamma_select", flush=True)


if __name__ == "__main__":
    main()
