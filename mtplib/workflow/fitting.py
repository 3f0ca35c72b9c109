"""Stage 3, seed-scanned fitting: one fit per seed on a fixed train/test split, then a gather.

The split is fixed by `fit.split_seed`, so every seed competes on the same test set.
"""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from ..io import read_dataset

# config metric -> (data set, quantity, statistic) in the error JSON of a seed
METRICS = {
    "force_rmse_test": ("test", "forces", "rmse"),
    "force_mae_test": ("test", "forces", "mae"),
    "energy_rmse_test": ("test", "energy_per_atom", "rmse"),
    "energy_mae_test": ("test", "energy_per_atom", "mae"),
    "stress_rmse_test": ("test", "stress", "rmse"),
    "loss_test": ("test", "loss", None),
}


def seeds_of(fit_config):
    """The list of seeds: `seeds` is a count (0..n-1) or an explicit list."""
    seeds = fit_config["seeds"]
    return list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]


def split(images, fit_config):
    from ..training import train_test_split
    return train_test_split(images, fit_config["test_fraction"], fit_config["split_seed"])


def initial_potential(elements, mtp_config):
    from ..potential import MTPotential
    return MTPotential.from_level(mtp_config["level"], list(elements), mtp_config["min_dist"],
                                  mtp_config["max_dist"], mtp_config["radial_basis_size"])


def fit_seed(train_file, isolated_file, elements, mtp_config, fit_config, seed, out_potential,
             out_errors, log=print):
    """Fit one seed on the training part of the split; write the potential and its errors."""
    from ..analysis.errors import error_metrics, write_errors_json
    from ..training import fit
    images = read_dataset(train_file)
    train, test = split(images, fit_config)
    log(f"seed {seed}: {len(train)} training and {len(test)} test configurations")
    isolated = json.loads(Path(isolated_file).read_text()) if isolated_file else None
    if isolated and "energies" in isolated:
        isolated = isolated["energies"]
    w = fit_config["weights"]
    pot = fit(train, initial_potential(elements, mtp_config),
              weights=(w["energy"], w["forces"], w["stress"]), scaling=fit_config["scaling"],
              seed=seed, max_iter=fit_config["max_iter"],
              optimize_radial=fit_config["optimize_radial"],
              radial_optimizer=fit_config["radial_optimizer"], forces_cap=fit_config.get("forces_cap"),
              isolated_energies=isolated or None, log=log)
    errors = {"seed": seed, "train": error_metrics(train, pot.evaluate_many(train))}
    if test:
        errors["test"] = error_metrics(test, pot.evaluate_many(test))
    if isolated:
        errors["isolated_energies"] = isolated
    pot.save(out_potential)
    write_errors_json(out_errors, errors)
    return pot, errors


def metric_value(errors, metric):
    dataset, quantity, stat = METRICS[metric]
    node = errors.get(dataset) or errors.get("train", {})
    value = node.get(quantity, {})
    value = value.get(stat) if isinstance(value, dict) else value
    return float("inf") if value is None else float(value)


def gather(error_files, potential_files, metric, committee_size, out_table, out_best,
           out_committee, log=print):
    """The table of all seeds (best first), the best potential and the committee."""
    rows = []
    for err_file, pot_file in zip(error_files, potential_files):
        errors = json.loads(Path(err_file).read_text())
        row = {"seed": errors["seed"], "potential": str(pot_file), metric: metric_value(errors, metric)}
        for dataset in ("train", "test"):
            for quantity in ("energy_per_atom", "forces", "stress"):
                for stat in ("mae", "rmse"):
                    value = errors.get(dataset, {}).get(quantity, {}).get(stat)
                    row[f"{dataset}_{quantity}_{stat}"] = value
        rows.append(row)
    rows.sort(key=lambda r: (r[metric], r["seed"]))
    with open(out_table, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    shutil.copyfile(rows[0]["potential"], out_best)
    members = rows[:committee_size]
    Path(out_committee).write_text(json.dumps(
        {"metric": metric, "best_seed": rows[0]["seed"], "seeds": [r["seed"] for r in members],
         "members": [r["potential"] for r in members], "values": [r[metric] for r in members]},
        indent=2) + "\n")
    log(f"best seed {rows[0]['seed']} ({metric} = {rows[0][metric]:.6g}) of {len(rows)}; "
        f"committee of {len(members)}")
    return rows


def plots(rows, best_file, train_file, elements, fit_config, metric, out_parity, out_seeds):
    """Parity plots of the best potential on train and test, and the spread over seeds."""
    from ..analysis.plots import parity_plots, seed_error_plot
    from ..potential import MTPotential
    pot = MTPotential.load(best_file, species=list(elements))
    train, test = split(read_dataset(train_file), fit_config)
    sets = {"train": (train, pot.evaluate_many(train))}
    if test:
        sets["test"] = (test, pot.evaluate_many(test))
    parity_plots(sets, out_parity)
    seed_error_plot(rows, metric, out_seeds)


def main(argv=None):
    """CLI of the fit_seed rule, so that it can run under `mpiexec -n K` (rank 0 writes)."""
    import argparse
    import sys
    p = argparse.ArgumentParser(description="Fit one seed of the stage-3 seed scan")
    p.add_argument("--train", required=True)
    p.add_argument("--isolated")
    p.add_argument("--config", required=True, help="JSON with elements, mtp and fit sections")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--potential", required=True)
    p.add_argument("--errors", required=True)
    args = p.parse_args(argv)
    cfg = json.loads(args.config)

    def log(msg):
        print(msg, flush=True)
    try:
        fit_seed(args.train, args.isolated, cfg["elements"], cfg["mtp"], cfg["fit"], args.seed,
                 args.potential, args.errors, log=log)
    except ValueError as exc:
        print(f"fit seed {args.seed}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
