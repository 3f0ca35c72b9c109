"""The seed scan and committees: fit several seeds on one fixed split, rank them by one metric,
keep the best and the best K as a committee.

One metric vocabulary: ``set.quantity.statistic`` paths into the error JSON of a fit, e.g.
``test.forces.rmse`` or ``train.energy_per_atom.mae`` (sets: train, test, valid; quantities:
energy_per_atom, forces, stress, and ``set.loss``). One committee file format
(``committee.json``: metric, best, best_seed, members, seeds, values).

The seeds can run in one process (:func:`scan`) or as separate jobs (:func:`fit_seed` per
seed, then :func:`gather` over their files), with the same files either way.
"""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np

from ..analysis.errors import error_metrics, write_errors_json
from .optimize import fit
from .parallel import Reducer

QUANTITIES = ("energy_per_atom", "forces", "stress")
SETS = ("train", "test", "valid")


def seeds_of(seeds) -> list[int]:
    """The list of seeds: a count n (seeds 0..n-1) or an explicit list."""
    return list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]


def check_metric(metric: str) -> str:
    """`metric` when it is a valid ``set.quantity.statistic`` path, else a ValueError naming it."""
    parts = metric.split(".")
    ok = (len(parts) == 3 and parts[0] in SETS and parts[1] in QUANTITIES
          and parts[2] in ("mae", "rmse", "max")) or (len(parts) == 2 and parts[0] in SETS
                                                       and parts[1] == "loss")
    if not ok:
        raise ValueError(f"metric {metric!r}: give set.quantity.statistic with set in {SETS}, "
                         f"quantity in {QUANTITIES} and statistic mae|rmse|max (e.g. "
                         "test.forces.rmse), or set.loss")
    return metric


def metric_value(errors: dict, metric: str) -> float:
    """'test.forces.rmse' -> errors['test']['forces']['rmse']; inf when missing. A fit without
    the metric's set (e.g. no test set) is ranked on the training set instead."""
    first, *rest = metric.split(".")
    node = errors.get(first) or errors.get("train", {})
    for key in rest:
        if not isinstance(node, dict) or node.get(key) is None:
            return float("inf")
        node = node[key]
    return float(node)


def error_sets(potential, sets: dict) -> dict:
    """error_metrics of `potential` on each named non-empty set of images."""
    return {name: error_metrics(imgs, potential.evaluate_many(imgs))
            for name, imgs in sets.items() if imgs}


def error_summary(potential, images):
    """error_metrics of a potential on images (empty dict for no images)."""
    return error_sets(potential, {"x": images}).get("x", {})


def fit_seed(train_images, init_potential, seed, out_potential, *, test_images=(),
             valid_images=(), isolated_energies=None, comm="auto", log=print, **fit_kwargs):
    """Fit one seed; write the potential and its errors (``.json`` beside it, with the seed).
    Under MPI every rank fits, rank 0 writes. Returns (potential, errors)."""
    red = Reducer(comm)
    say = log if red.is_root else None
    pot = fit(train_images, init_potential, seed=seed, comm=red.comm, log=say,
              isolated_energies=isolated_energies, **fit_kwargs)
    errors = {"seed": int(seed), **error_sets(pot, {"train": list(train_images),
                                                   "test": list(test_images),
                                                   "valid": list(valid_images)})}
    if isolated_energies:
        errors["isolated_energies"] = dict(isolated_energies)
    if red.is_root:
        out_potential = Path(out_potential)
        out_potential.parent.mkdir(parents=True, exist_ok=True)
        pot.save(out_potential)
        write_errors_json(out_potential.with_suffix(".json"), errors)
    return pot, errors


def seed_row(errors: dict, potential_file, metric: str) -> dict:
    """One row of the seed table: seed, potential, the metric, then every set's MAE and RMSE."""
    row = {"seed": int(errors["seed"]), "potential": str(potential_file),
           metric: metric_value(errors, metric)}
    for name in SETS:
        for q in QUANTITIES:
            for stat in ("mae", "rmse"):
                value = errors.get(name, {}).get(q, {}).get(stat)
                if name != "valid" or value is not None:
                    row[f"{name}_{q}_{stat}"] = value
    return row


def gather(potential_files, metric, committee_size, out_table, out_best, out_committee,
           log=print):
    """The table of every seed's fit (best first by `metric`, ties by seed), the best potential
    and the committee of the best `committee_size`. Each potential's errors are read from the
    ``.json`` beside it. Returns the rows."""
    check_metric(metric)
    rows = []
    for pot_file in potential_files:
        errors = json.loads(Path(pot_file).with_suffix(".json").read_text())
        rows.append(seed_row(errors, pot_file, metric))
    if not rows:
        raise ValueError("gather: no fitted potentials")
    rows.sort(key=lambda r: (r[metric], r["seed"]))
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(out_table, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    shutil.copyfile(rows[0]["potential"], out_best)
    members = rows[:max(1, committee_size)]
    Path(out_committee).write_text(json.dumps(
        {"metric": metric, "best": str(out_best), "best_seed": members[0]["seed"],
         "members": [r["potential"] for r in members], "seeds": [r["seed"] for r in members],
         "values": [r[metric] for r in members]}, indent=2) + "\n")
    if log:
        log(f"best seed {rows[0]['seed']} of {len(rows)} ({metric} = {rows[0][metric]:.6g}); "
            f"committee of {len(members)} in {out_committee}")
    return rows


def scan(train_images, init_potential, seeds, out_dir, *, test_images=(), valid_images=(),
         metric="test.forces.rmse", committee_size=5, comm="auto", log=print, **fit_kwargs):
    """Fit one potential per seed (same data): out_dir/seed_<s>.mtp and .json, the table
    out_dir/scan.csv, out_dir/best.mtp and out_dir/committee.json. Returns the rows, best
    first (an empty list on ranks other than 0)."""
    check_metric(metric)
    red = Reducer(comm)
    out_dir = Path(out_dir)
    files = []
    for seed in seeds:
        if log and red.is_root:
            log(f"--- seed {seed}")
        path = out_dir / f"seed_{seed}.mtp"
        fit_seed(train_images, init_potential, seed, path, test_images=test_images,
                 valid_images=valid_images, comm=red.comm, log=log, **fit_kwargs)
        files.append(path)
    if not red.is_root:
        return []
    return gather(files, metric, committee_size, out_dir / "scan.csv", out_dir / "best.mtp",
                  out_dir / "committee.json", log=log)


def best_of_seeds(train_images, init_potential, seeds, metric, *, test_images=(), log=print,
                  **fit_kwargs):
    """The seed scan in memory (no files): (metric value, seed, potential) of the best seed."""
    best = None
    for seed in seeds:
        if log:
            log(f"seed {seed} of the scan")
        pot = fit(train_images, init_potential, seed=seed, log=log, **fit_kwargs)
        errors = error_sets(pot, {"train": list(train_images), "test": list(test_images)})
        value = metric_value(errors, metric)
        if best is None or value < best[0]:
            best = (value, seed, pot)
    return best


def load_committee(path, species=None):
    """The potentials listed in a committee.json, best first."""
    from ..potential import MTPotential
    data = json.loads(Path(path).read_text())
    return [MTPotential.load(p, species=species) for p in data["members"]]


def committee_evaluate(potentials, images):
    """Mean and standard deviation over a committee, per image: dicts with energy, forces,
    stress (None without a periodic cell) and their *_std."""
    out = []
    for atoms in images:
        res = [p.evaluate(atoms) for p in potentials]
        entry = {}
        for key in ("energy", "forces", "stress"):
            vals = [r[key] for r in res]
            if any(v is None for v in vals):
                entry[key] = entry[f"{key}_std"] = None
                continue
            arr = np.array(vals, dtype=float)
            entry[key] = arr.mean(axis=0) if arr.ndim > 1 else float(arr.mean())
            std = arr.std(axis=0)
            entry[f"{key}_std"] = std if arr.ndim > 1 else float(std)
        out.append(entry)
    return out
