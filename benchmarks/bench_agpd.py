#!/usr/bin/env python3
"""The MLIP paper's Ag-Pd DFT data (../shared/data/agpd/): our fit beside the published MTP.

    NUMBA_NUM_THREADS=1 python benchmarks/bench_agpd.py [--level 16] [--fit-iter 100] [--tol T]
        [--seed 0]

Fits a potential of --level on train.cfg (our VarPro fit; --fit-iter 0: the linear
coefficients only, on seeded random radial functions; --tol: the fit's stopping rule, default
the library's) and prints, for it and the published
final.mtp: energy/atom and force errors on relaxed.xyz and pathway.xyz; the formation
energies of the 65 relaxed structures against DFT (end members: the lowest-energy one-atom
Ag and Pd cells of train.cfg, from each model's own energies there); gamma (configuration
mode, active set from train.cfg) along pathway.xyz, the paper's Fig. 10 case.
"""
import argparse
import io
import json
import time
import warnings
from pathlib import Path

import ase.io
import numpy as np
from ase.calculators.singlepoint import SinglePointCalculator

from mtplib.active.grade import ActiveSet
from mtplib.analysis.errors import error_metrics
from mtplib.analysis.hull import composition_counts, formation_energies
from mtplib.io import read_dataset
from mtplib.potential import MTPotential
from mtplib.training import fit
from mtplib.training.optimize import DEFAULT_TOL

ROOT = Path(__file__).resolve().parents[1]
# ../shared beside the checkout (a worktree under /work/wt/ has it two levels up)
DATA = next((p / "shared" / "data" / "agpd" for p in (ROOT.parent, ROOT.parent.parent)
             if (p / "shared" / "data" / "agpd").exists()), ROOT.parent / "shared" / "data" / "agpd")
ELEMENTS = ["Ag", "Pd"]


def read_vasp_xyz(path):
    """Frames with the DFT energy and forces (vasp_energy, vasp_force) attached; the
    pathway file writes `properties=` in lower case, which ASE does not read as the header."""
    text = Path(path).read_text().replace("properties=", "Properties=")
    frames = ase.io.read(io.StringIO(text), ":", format="extxyz")
    for a in frames:
        forces = a.arrays.pop("vasp_force")
        a.calc = SinglePointCalculator(a, energy=float(a.info["vasp_energy"]), forces=forces)
    return frames


def errors(pot, images):
    m = error_metrics(images, pot.evaluate_many(images))
    return dict(energy_mae_meV=m["energy_per_atom"]["mae"],      # meV/atom already
                energy_rmse_meV=m["energy_per_atom"]["rmse"],
                force_mae=m["forces"]["mae"], force_rmse=m["forces"]["rmse"])


def formation(pot, relaxed, train):
    """E_f (eV/atom) of `relaxed` by the model (None: DFT), end members from `train`."""
    pure = [a for a in train if len(set(a.numbers)) == 1]
    e_pure = ([a.get_potential_energy() for a in pure] if pot is None
              else [r["energy"] for r in pot.evaluate_many(pure)])
    mu = []
    for el in ELEMENTS:
        mu.append(min(e / len(a) for e, a in zip(e_pure, pure) if a[0].symbol == el))
    energies = ([a.get_potential_energy() for a in relaxed] if pot is None
                else [r["energy"] for r in pot.evaluate_many(relaxed)])
    return formation_energies(energies, composition_counts(relaxed, ELEMENTS), mu)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--level", type=int, default=16)
    ap.add_argument("--fit-iter", type=int, default=100)
    ap.add_argument("--tol", type=float, default=DEFAULT_TOL,
                    help="relative loss change that stops the fit (default %(default)s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/out/agpd")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train = read_dataset(data / "train.cfg", species=ELEMENTS)
    relaxed, pathway = read_vasp_xyz(data / "relaxed.xyz"), read_vasp_xyz(data / "pathway.xyz")
    # final.mtp has three types; the data use the first two (Ag, Pd); the third is unused
    published = MTPotential.load(data / "final.mtp", species=ELEMENTS + ["Pt"])
    t = time.perf_counter()
    init = MTPotential.from_level(args.level, ELEMENTS, min_dist=published.min_dist,
                                  max_dist=published.max_dist,
                                  radial_basis_size=published.radial_basis_size)
    fit_log = []
    ours = fit(train, init, seed=args.seed, max_iter=args.fit_iter, tol=args.tol,
               optimize_radial=args.fit_iter > 0, log=fit_log.append)
    fit_s = time.perf_counter() - t
    stop = [line for line in fit_log if "stopped" in line or line.startswith("final")]
    print(*stop, sep="\n", flush=True)
    ours.save(out / f"ours_level{args.level}.mtp")
    e_dft = formation(None, relaxed, train)
    report = dict(fit_wall_s=fit_s, level=args.level, fit_iter=args.fit_iter, tol=args.tol,
                  fit_stop=stop, models={})
    for name, pot in (("published final.mtp", published), (f"ours level {args.level}", ours)):
        e_f = formation(pot, relaxed, train)
        aset = ActiveSet.from_training(pot, train, mode="configuration")
        gamma = [aset.grade(a.copy()) for a in pathway]
        report["models"][name] = dict(
            parameters=pot.parameter_count, train=errors(pot, train),
            relaxed=errors(pot, relaxed), pathway=errors(pot, pathway),
            formation_mae_meV=float(1e3 * np.abs(e_f - e_dft).mean()),
            formation_max_meV=float(1e3 * np.abs(e_f - e_dft).max()),
            pathway_gamma=[round(g, 3) for g in gamma])
        print(name, json.dumps(report["models"][name]), flush=True)
    report["dft_formation_meV"] = [round(1e3 * e, 2) for e in e_dft]
    (out / "summary.json").write_text(json.dumps(report, indent=1) + "\n")
    print("| model | params | relaxed E MAE (meV/atom) | relaxed F MAE (eV/Å) | pathway E MAE | "
          "pathway F MAE | E_f MAE vs DFT (meV/atom) | max gamma on pathway (frame) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in report["models"].items():
        g = np.array(r["pathway_gamma"])
        print(f"| {name} | {r['parameters']} | {r['relaxed']['energy_mae_meV']:.2f} | "
              f"{r['relaxed']['force_mae']:.4f} | {r['pathway']['energy_mae_meV']:.2f} | "
              f"{r['pathway']['force_mae']:.4f} | {r['formation_mae_meV']:.2f} | "
              f"{g.max():.3g} ({int(g.argmax())}) |")
        print(f"  gamma along the pathway: {' '.join(f'{x:.3g}' for x in g)}")


if __name__ == "__main__":
    main()
