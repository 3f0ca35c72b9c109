"""Seed scan and committees: fit several seeds on one fixed split, rank them, keep the best K."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np

from .optimize import fit
from .parallel import Reducer

METRICS = ("energy_per_atom", "forces", "stress")


def error_summary(potential, images):
    """error_metrics of a potential on images (empty dict for no images)."""
    if not images:
        return {}
    from ..analysis.errors import error_metrics
    return error_metrics(images, potential.evaluate_many(images))


def _metric_value(errors, metric):
    """'test.forces.rmse' -> errors['test']['forces']['rmse'] (inf when missing)."""
    node = errors
    for key in metric.split("."):
        if not isinstance(node, dict) or node.get(key) is None:
            return float("inf")
        node = node[key]
    return float(node)


def scan(train_images, init_potential, seeds, out_dir, *, test_images=(), valid_images=(),
         metric="test.forces.rmse", committee_size=5, log=print, **fit_kwargs):
    """Fit one potential per seed (same data), write out_dir/seed_<s>.mtp and .json, a table
    out_dir/scan.csv, and out_dir/committee.json listing the best `committee_size` by
    `metric` (e.g. 'test.forces.rmse', 'train.energy_per_atom.rmse'); best first.

    Returns the list of table rows (dicts), sorted best first."""
    red = Reducer(fit_kwargs.pop("comm", "auto"))
    out_dir = Path(out_dir)
    if red.is_root:
        out_dir.mkdir(parents=True, exist_ok=True)
    sets = {"train": list(train_images), "test": list(test_images), "valid": list(valid_images)}
    rows = []
    for seed in seeds:
        say = log if red.is_root else None
        if say:
            say(f"--- seed {seed}")
        pot = fit(train_images, init_potential, seed=seed, comm=red.comm, log=say, **fit_kwargs)
        if not red.is_root:
            continue
        errors = {name: error_summary(pot, imgs) for name, imgs in sets.items() if imgs}
        path = out_dir / f"seed_{seed}.mtp"
        pot.save(path)
        from ..analysis.errors import write_errors_json
        write_errors_json(path.with_suffix(".json"), errors)
        row = {"seed": seed, "potential": str(path), "metric": _metric_value(errors, metric)}
        for name, m in errors.items():
            for q in METRICS:
                if q in m:
                    row[f"{name}_{q}_rmse"] = m[q].get("rmse")
                    row[f"{name}_{q}_mae"] = m[q].get("mae")
        rows.append(row)
    if not red.is_root:
        return []
    rows.sort(key=lambda r: (r["metric"], r["seed"]))
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(out_dir / "scan.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    committee = rows[:max(1, committee_size)]
    best = out_dir / "best.mtp"
    shutil.copyfile(committee[0]["potential"], best)
    (out_dir / "committee.json").write_text(json.dumps(
        {"metric": metric, "best": str(best), "best_seed": committee[0]["seed"],
         "members": [r["potential"] for r in committee],
         "seeds": [r["seed"] for r in committee],
         "values": [r["metric"] for r in committee]}, indent=2) + "\n")
    if log:
        log(f"best seed {committee[0]['seed']} ({metric} = {committee[0]['metric']:.6g}); "
            f"committee of {len(committee)} in {out_dir / 'committee.json'}")
    return rows


def load_committee(path, species=None):
    """The potentials listed in a committee.json."""
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
