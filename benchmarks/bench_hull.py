#!/usr/bin/env python3
"""Ag-Pd convex hull by active-learning relaxation against the direct EMT hull (MLIP paper sec. 6).

    NUMBA_NUM_THREADS=1 python benchmarks/bench_hull.py --levels 16 12 20 --out benchmarks/out/hull

1. The pool: icet derivative superstructures of fcc, bcc, hcp, up to --max-atoms atoms.
2. The reference hull: every pool structure relaxed directly with EMT (calls counted).
3. Per level: the active-learning relaxation loop from a small initial training set (the
   one-atom Ag and Pd cells of each lattice at 0.96, 1.00, 1.04 of their volume, EMT-labelled),
   until no relaxation stops; the hull of the final pass; formation-energy errors against
   the reference over the pool, on-hull sets, reference calls of both routes.
Writes OUT/pool.extxyz, OUT/reference/relaxed.extxyz, OUT/level_L/{iter_NNN/, relaxed.extxyz,
hull.csv, hull.png, final.mtp}, OUT/summary.json; prints a Markdown table.
"""
import argparse
import json
import resource
import time
import warnings
from pathlib import Path

import ase.io
import numpy as np
from ase.calculators.emt import EMT

from mtplib.active.md import Thresholds
from mtplib.active.pool import PoolSettings, enumerate_pool
from mtplib.active.relax import relax_pool_with_reference
from mtplib.active.relax_learning import label, learn_by_relaxation
from mtplib.analysis.hull import convex_hull, hull_plot, write_hull_csv
from mtplib.potential import MTPotential

ELEMENTS = ("Ag", "Pd")
FINISHED = ("converged", "not-converged")


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def log(msg):
    print(msg, flush=True)


def initial_training(pool, scales=(0.96, 1.0, 1.04)):
    """The one-atom pool cells (pure Ag and Pd on each lattice) at three volumes, labelled."""
    cells = []
    for atoms in pool:
        if len(set(atoms.numbers)) == 1 and len(atoms) == min(len(a) for a in pool
                                                               if a.info["lattice"] == atoms.info["lattice"]):
            for s in scales:
                a = atoms.copy()
                a.set_cell(a.cell.array * s ** (1 / 3), scale_atoms=True)
                cells.append(a)
    labelled, failed = label(cells, EMT)
    assert not failed
    return labelled


def write_relaxed(path, relaxations):
    frames = []
    for r in relaxations:
        a = r.atoms.copy()
        a.info.update(name=r.name, status=r.status, relaxed_energy=r.energy, steps=r.steps)
        frames.append(a)
    ase.io.write(path, frames, format="extxyz")


def hull_of(relaxations, pool):
    energies = [r.energy if r.status in FINISHED else np.nan for r in relaxations]
    return convex_hull(energies, [r.atoms for r in relaxations], ELEMENTS,
                       names=[p.info["pool_id"] + ":" + p.info["formula"] for p in pool])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--levels", type=int, nargs="+", default=[16])
    ap.add_argument("--max-atoms", type=int, default=7)
    ap.add_argument("--lattices", nargs="+", default=["fcc", "bcc", "hcp"])
    ap.add_argument("--gamma-break", type=float, default=2.0)
    ap.add_argument("--fmax", type=float, default=0.01, help="eV/Å")
    ap.add_argument("--steps", type=int, default=200, help="K: steps before 'not converged'")
    ap.add_argument("--fit-iter", type=int, default=100)
    ap.add_argument("--max-iterations", type=int, default=15)
    ap.add_argument("--max-select", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/out/hull")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_wall, t_cpu = time.perf_counter(), cpu_seconds()

    settings = PoolSettings(elements=ELEMENTS, lattices=tuple(args.lattices),
                            max_atoms=args.max_atoms)
    pool = enumerate_pool(settings)
    ase.io.write(out / "pool.extxyz", pool, format="extxyz")
    log(f"pool: {len(pool)} structures ({settings.to_dict()})")
    relax = dict(optimizer="bfgs", fmax=args.fmax, steps=args.steps)

    w, c = time.perf_counter(), cpu_seconds()
    reference = relax_pool_with_reference(pool, EMT, **relax)
    ref_calls = int(sum(r.calls for r in reference))
    ref_time = (time.perf_counter() - w, cpu_seconds() - c)
    (out / "reference").mkdir(exist_ok=True)
    write_relaxed(out / "reference" / "relaxed.extxyz", reference)
    ref_hull = hull_of(reference, pool)
    ref_status = {s: sum(r.status == s for r in reference) for s in
                  ("converged", "not-converged", "failed")}
    log(f"reference (EMT) relaxations: {ref_status}, {ref_calls} EMT calls, "
        f"{ref_time[0]:.0f} s wall, {ref_time[1]:.0f} s CPU; on hull: "
        f"{[ref_hull.names[i] for i in np.flatnonzero(ref_hull.on_hull)]}")
    write_hull_csv(out / "reference" / "hull.csv", ref_hull)

    summary = dict(pool=len(pool), pool_settings=settings.to_dict(), relax=relax,
                   gamma_break=args.gamma_break, reference_calls=ref_calls,
                   reference_status=ref_status, reference_wall_s=ref_time[0],
                   reference_cpu_s=ref_time[1],
                   reference_on_hull=[ref_hull.names[i] for i in np.flatnonzero(ref_hull.on_hull)],
                   levels={})
    train0 = initial_training(pool)
    log(f"initial training set: {len(train0)} EMT-labelled one-atom cells")
    for level in args.levels:
        w, c = time.perf_counter(), cpu_seconds()
        pot = MTPotential.from_level(level, list(ELEMENTS), min_dist=2.0, max_dist=5.0,
                                     radial_basis_size=8)
        ldir = out / f"level_{level}"
        res = learn_by_relaxation(
            pool, train0, pot, EMT, thresholds=Thresholds(gamma_select=args.gamma_break,
                                                          gamma_break=args.gamma_break),
            max_iterations=args.max_iterations, max_select=args.max_select,
            fit_options=dict(max_iter=args.fit_iter, seed=args.seed), out_dir=ldir, log=log, **relax)
        wall, cpu = time.perf_counter() - w, cpu_seconds() - c
        res.potential.save(ldir / "final.mtp")
        write_relaxed(ldir / "relaxed.extxyz", res.relaxations)
        hull = hull_of(res.relaxations, pool)
        # the EMT energy at the MTP-relaxed geometry: the geometry's error, not the MTP's
        at_geometry = np.array([
            (lambda a: (setattr(a, "calc", EMT()), a.get_potential_energy())[1])(r.atoms.copy())
            if r.status in FINISHED else np.nan for r in res.relaxations])
        emt_at_mtp = convex_hull(at_geometry, [r.atoms for r in res.relaxations], ELEMENTS,
                                 mu=ref_hull.mu)
        both = np.isfinite(hull.formation_energy) & np.isfinite(ref_hull.formation_energy)
        err = 1e3 * np.abs(hull.formation_energy - ref_hull.formation_energy)[both]
        err_geo = 1e3 * np.abs(emt_at_mtp.formation_energy - ref_hull.formation_energy)[both]
        on_mtp = {hull.names[i] for i in np.flatnonzero(hull.on_hull)}
        on_ref = set(summary["reference_on_hull"])
        near = ref_hull.distance < 0.005
        write_hull_csv(ldir / "hull.csv", hull, extra={
            "status": [r.status for r in res.relaxations],
            "reference_formation_energy_meV_per_atom": [f"{1e3 * e:.4f}" for e in
                                                        ref_hull.formation_energy],
            "reference_distance_meV_per_atom": [f"{1e3 * d:.4f}" for d in ref_hull.distance]})
        hull_plot(ldir / "hull.png", hull, reference=ref_hull, label=f"MTP level {level}",
                  reference_label="EMT")
        status = {s: sum(r.status == s for r in res.relaxations) for s in
                  ("converged", "stopped", "not-converged", "failed")}
        rec = dict(level=level, parameters=pot.parameter_count, converged=res.converged,
                   iterations=len(res.iterations), training_size=len(res.training),
                   labels=res.labels_spent, call_ratio=ref_calls / res.labels_spent,
                   final_status=status, compared=int(both.sum()),
                   formation_mae_meV=float(err.mean()), formation_max_meV=float(err.max()),
                   formation_rmse_meV=float(np.sqrt((err ** 2).mean())),
                   emt_at_mtp_geometry_mae_meV=float(err_geo.mean()),
                   near_hull_mae_meV=float(err[near[both]].mean()) if near[both].any() else None,
                   on_hull=sorted(on_mtp), same_on_hull=on_mtp == on_ref,
                   mtp_calls=int(sum(r["mtp_calls"] for r in res.iterations)),
                   wall_s=wall, cpu_s=cpu, iteration_records=res.iterations)
        summary["levels"][str(level)] = rec
        log(f"level {level}: {json.dumps({k: v for k, v in rec.items() if k != 'iteration_records'})}")
        (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    summary["wall_s"], summary["cpu_s"] = time.perf_counter() - t_wall, cpu_seconds() - t_cpu
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    log("| level | params | training set | iterations | labels | EMT calls direct / labels | "
        "E_f MAE (meV/atom) | E_f max | EMT@MTP-geometry MAE | same on-hull set | wall s | CPU s |")
    log("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for level, r in summary["levels"].items():
        log(f"| {level} | {r['parameters']} | {r['training_size']} | {r['iterations']} | "
            f"{r['labels']} | {ref_calls} / {r['labels']} = {r['call_ratio']:.1f} | "
            f"{r['formation_mae_meV']:.2f} | {r['formation_max_meV']:.2f} | "
            f"{r['emt_at_mtp_geometry_mae_meV']:.2f} | {r['same_on_hull']} | {r['wall_s']:.0f} | "
            f"{r['cpu_s']:.0f} |")
    log(f"reference: {len(pool)} EMT relaxations, {ref_calls} calls; whole run "
        f"{summary['wall_s']:.0f} s wall, {summary['cpu_s']:.0f} s CPU")


if __name__ == "__main__":
    main()
