"""Stage 4, active learning: explore (MD), select (maxvol), label, refit, decide.

One iteration ``results/al/iter_{i:03d}/`` is five steps, each a function here and a rule
in ``rules/active.smk``:

1. :func:`explore`: learning-on-the-fly MD of one scenario with the previous potential
   and its active set; candidates (gamma > gamma_select) and a small JSON of the run.
2. :func:`select`: merge every scenario's candidates, pick the configurations that grow
   |det A| (maxvol, `select_add`), at most ``max_select``; add the previous iteration's
   failed labels for a retry (as MLIP-2 does).
3. :func:`main` ``label``: the stage-2 labelling code (:func:`label_structures`: retries,
   fresh calculators, failures to ``failed.extxyz``, crash-safe resume, MPI).
4. :func:`refit`: previous training set + new labels; warm-start fit from the previous
   potential (or a seed scan), the new active set, errors.
5. :func:`decide`: ``iteration.json``, converged or not and why.

Iteration 0 starts from stage 3 (``results/fit/best.mtp``, ``results/labels/train.extxyz``).
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from .frames import write_frames_atomic

ILL_CONDITIONED_HINT = (
    "the selection found nothing new although the MD extrapolated: the active set may be "
    "ill-conditioned (large condition number of A); consider a larger gamma_select, "
    "selection_mode 'neighborhood', or more diverse starting data")
MAX_LABEL_ROUNDS = 2   # a configuration whose labelling failed is retried once, next iteration


def _read(path):
    from .merge import read_all
    return read_all([path]) if Path(path).exists() else []


def _isolated(path):
    if not path:
        return None
    data = json.loads(Path(path).read_text())
    return data.get("energies", data) or None


def thresholds_for(run: dict, al: dict):
    """Thresholds of one run from its scenario entry and the active_learning section."""
    from ..active import Thresholds
    committee = al.get("committee_criterion", {})
    use_std = committee_enabled(al)
    return Thresholds(
        gamma_select=al["gamma_select"], gamma_break=al["gamma_break"],
        std_select=committee.get("threshold") if use_std else None,
        std_break=committee.get("break_threshold") if use_std else None,
        interval=run.get("interval", 10), max_forces_check=run.get("max_forces_check"),
    )


def committee_enabled(al: dict) -> bool:
    """The committee criterion is on when enabled, or when it replaces gamma (only)."""
    committee = al.get("committee_criterion", {})
    return bool(committee.get("enabled", False) or committee.get("only", False))


def load_committee(potential, committee_file, elements):
    """The committee: the current potential first (it drives the MD), then the other
    stage-3 members."""
    from ..active import Committee
    from ..potential import MTPotential
    members = json.loads(Path(committee_file).read_text())["members"]
    others = [MTPotential.load(p, species=list(elements)) for p in members[1:]]
    if not others:
        raise ValueError("config key 'active_learning.committee_criterion.enabled': the stage-3 "
                         "committee has one member; set fit.committee_size >= 2")
    return Committee([potential] + others)


# ---- 1. explore ---------------------------------------------------------------------------
def explore(potential_file, state_file, run, al, phases, elements, iteration, out_candidates,
            out_summary, committee_file=None, log=print):
    """Learning-on-the-fly MD of one run; candidates to `out_candidates`, a JSON summary."""
    from ..active import ActiveSet, run_md
    from ..potential import MTPotential
    from .scenarios import ENSEMBLES, build_start, check_species

    pot = MTPotential.load(potential_file, species=list(elements))
    only_committee = al.get("committee_criterion", {}).get("only", False)
    aset = None if only_committee else ActiveSet.load(state_file, pot)
    committee = None
    if committee_enabled(al):
        committee = load_committee(pot, committee_file, elements)
    where = f"active_learning.scenarios[{run['scenario']}]"
    atoms = build_start(run, phases, where=where)
    check_species(atoms, elements, f"config key '{where}'")
    out_candidates = Path(out_candidates)
    out_candidates.unlink(missing_ok=True)
    seed = int(run.get("seed", 0)) + 1000 * int(iteration)   # a fresh trajectory each iteration
    log(f"iteration {iteration}, {run['name']}: {len(atoms)} atoms, {run.get('ensemble', 'nvt')} "
        f"at {run['temperature']:g} K, {run.get('steps', 1000)} steps of {run.get('timestep', 1.0)} fs")
    result = run_md(pot, atoms, active_set=aset, committee=committee,
                    ensemble=ENSEMBLES[run.get("ensemble", "nvt")],
                    temperature=run["temperature"], steps=run.get("steps", 1000),
                    timestep=run.get("timestep", 1.0), pressure=run.get("pressure", 0.0),
                    thresholds=thresholds_for(run, al), candidates=out_candidates, seed=seed,
                    scenario=run["name"], progress_interval=max(1, run.get("steps", 1000) // 10),
                    log=log)
    out_candidates.touch()
    summary = {"scenario": run["name"], "iteration": int(iteration), "steps": int(result.steps),
               "steps_requested": int(run.get("steps", 1000)), "reason": result.reason,
               "message": result.message, "max_gamma": float(result.max_gamma),
               "max_force_std": float(result.max_force_std), "candidates": int(result.candidates),
               "temperature": run["temperature"], "seed": seed}
    Path(out_summary).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


# ---- 2. select ----------------------------------------------------------------------------
def select(potential_file, state_file, candidate_files, previous_failed, al, elements, iteration,
           out_candidates, out_selected, out_summary, log=print):
    """maxvol selection from all candidates (+ committee picks) and the failed retries."""
    from ..active import ActiveSet, select_add
    from ..potential import MTPotential

    pool = [a for path in candidate_files for a in _read(path)]
    write_frames_atomic(out_candidates, pool)
    committee = al.get("committee_criterion", {})
    chosen: list[int] = []
    if pool and not committee.get("only", False):
        pot = MTPotential.load(potential_file, species=list(elements))
        aset = ActiveSet.load(state_file, pot)
        chosen = list(select_add(aset, pool, max_count=al["max_select"],
                                 where=f"iteration {iteration} candidates").selected)
    if pool and committee_enabled(al):      # committee picks, largest spread first
        spread = [(-float(a.info.get("force_std", 0.0)), k) for k, a in enumerate(pool)
                  if float(a.info.get("force_std", 0.0)) > committee["threshold"]]
        for _, k in sorted(spread):
            if len(chosen) >= al["max_select"]:
                break
            if k not in chosen:
                chosen.append(k)
    new = [pool[k].copy() for k in sorted(chosen)]
    retry = [a for a in _read(previous_failed) if int(a.info.get("al_label_rounds", 1)) < MAX_LABEL_ROUNDS] \
        if previous_failed else []
    dropped = len(_read(previous_failed)) - len(retry) if previous_failed else 0
    frames = []
    for atoms in new:
        atoms.info["al_label_rounds"] = 1
        frames.append(atoms)
    for atoms in retry:
        atoms.info["al_label_rounds"] = int(atoms.info.get("al_label_rounds", 1)) + 1
        for key in ("failure_reason", "label_attempts"):
            atoms.info.pop(key, None)
        frames.append(atoms)
    for k, atoms in enumerate(frames):
        atoms.info["phase"] = atoms.info.get("scenario", "al")   # stage-2 key: (phase, index)
        atoms.info["index"] = k
        atoms.info["al_iteration"] = int(iteration)
    write_frames_atomic(out_selected, frames)
    gammas = [float(a.info["gamma"]) for a in pool if "gamma" in a.info]
    summary = {"iteration": int(iteration), "candidates": len(pool), "selected": len(new),
               "retried": len(retry), "dropped_failures": dropped,
               "max_candidate_gamma": max(gammas) if gammas else None,
               "nothing_new": len(new) == 0}
    Path(out_summary).write_text(json.dumps(summary, indent=2) + "\n")
    log(f"iteration {iteration}: {len(pool)} candidates -> {len(new)} selected, "
        f"{len(retry)} failed label(s) retried, {dropped} given up")
    return summary


# ---- 4. refit -----------------------------------------------------------------------------
def fit_sets(all_frames, stage2_count, fit_config):
    """(fit set, test set): the stage-3 test split stays the test set in every iteration;
    every labelled active-learning configuration is trained on."""
    from .fitting import split
    train0, test = split(all_frames[:stage2_count], fit_config)
    return train0 + list(all_frames[stage2_count:]), test


def _errors(pot, sets):
    from ..analysis.errors import error_metrics
    return {name: error_metrics(imgs, pot.evaluate_many(imgs)) for name, imgs in sets.items() if imgs}


def refit(previous_potential, previous_train, labelled, stage2_train, isolated_file, elements,
          mtp_config, fit_config, al, iteration, out_train, out_potential, out_state, out_errors,
          valid_data=None, log=print):
    """Merge the new labels, refit (warm start or seed scan), rebuild the active set."""
    from ..active import ActiveSet
    from ..analysis.errors import write_errors_json
    from ..potential import MTPotential
    from ..training import fit
    from .fitting import initial_potential, metric_value, seeds_of

    previous = _read(previous_train)
    new = _read(labelled)
    everything = previous + new
    write_frames_atomic(out_train, everything)
    fit_set, test = fit_sets(everything, len(_read(stage2_train)), fit_config)
    prev = MTPotential.load(previous_potential, species=list(elements))
    isolated = _isolated(isolated_file)
    w = fit_config["weights"]
    common = dict(weights=(w["energy"], w["forces"], w["stress"]), scaling=fit_config["scaling"],
                  max_iter=al.get("refit_max_iter") or fit_config["max_iter"],
                  optimize_radial=fit_config["optimize_radial"],
                  radial_optimizer=fit_config["radial_optimizer"],
                  forces_cap=fit_config.get("forces_cap"), isolated_energies=isolated, log=log)
    how = al["refit"]
    if not new:
        log(f"iteration {iteration}: no new labels; the potential is kept")
        pot, how = prev, "kept"
    elif how == "warm":
        log(f"iteration {iteration}: warm-start refit on {len(fit_set)} configurations (+{len(new)})")
        pot = fit(fit_set, prev, warm_start=True, seed=int(iteration), **common)
    else:
        best = None
        for seed in seeds_of(fit_config):
            log(f"iteration {iteration}: seed {seed} of the refit scan")
            cand = fit(fit_set, initial_potential(elements, mtp_config), seed=seed, **common)
            errs = _errors(cand, {"train": fit_set, "test": test})
            value = metric_value(errs, fit_config["metric"])
            if best is None or value < best[0]:
                best = (value, seed, cand)
        pot = best[2]
        log(f"iteration {iteration}: best seed {best[1]} ({fit_config['metric']} = {best[0]:.5g})")
    pot.save(out_potential)
    pot = MTPotential.load(out_potential, species=list(elements))   # exactly what the next MD reads
    ActiveSet.from_training(pot, everything, mode=al["selection_mode"],
                            where=str(out_train)).save(out_state)
    sets = {"train": fit_set, "test": test}
    if valid_data:
        from ..io import read_dataset
        sets["valid"] = read_dataset(valid_data, species=list(elements))
    errors = {"iteration": int(iteration), "refit": how, "training_set_size": len(everything),
              "labels_added": len(new), **_errors(pot, sets)}
    write_errors_json(out_errors, errors)
    return errors


# ---- 5. decide ----------------------------------------------------------------------------
def decide(md_summaries, selection_file, failed_file, errors_file, gamma_break, iteration,
           out_summary, log=print):
    """iteration.json: the record of the iteration and whether the loop has converged.

    Converged when every run finished its steps without gamma >= gamma_break (nor a
    committee break or a blow-up), or when the selection found nothing new."""
    runs = [json.loads(Path(p).read_text()) for p in md_summaries]
    selection = json.loads(Path(selection_file).read_text())
    errors = json.loads(Path(errors_file).read_text())
    failed = len(_read(failed_file))
    stopped = [r for r in runs if r["reason"] != "finished" or r["max_gamma"] >= gamma_break]
    if not stopped:
        converged, reason = True, "all_finished"
        message = (f"all {len(runs)} MD runs finished their steps with gamma < gamma_break "
                   f"= {gamma_break:g}")
    elif selection["nothing_new"] and selection["retried"] == 0:
        converged, reason = True, "nothing_new"
        message = (f"{len(stopped)} MD run(s) stopped early "
                   f"({', '.join(r['scenario'] + ': ' + r['reason'] for r in stopped)}), but "
                   f"{ILL_CONDITIONED_HINT}")
    else:
        converged, reason = False, "extrapolation"
        message = (f"{len(stopped)} of {len(runs)} MD run(s) stopped early: "
                   + "; ".join(f"{r['scenario']}: {r['message']}" for r in stopped))
    record = {
        "iteration": int(iteration), "converged": converged, "reason": reason,
        "message": message, "training_set_size": errors["training_set_size"],
        "labels_added": errors["labels_added"], "labels_failed": failed,
        "candidates": selection["candidates"], "selected": selection["selected"],
        "retried": selection["retried"], "refit": errors["refit"],
        "steps_survived": {r["scenario"]: r["steps"] for r in runs},
        "steps_requested": {r["scenario"]: r["steps_requested"] for r in runs},
        "stop_reasons": {r["scenario"]: r["reason"] for r in runs},
        "max_gamma": max([r["max_gamma"] for r in runs], default=0.0),
        "max_gamma_per_scenario": {r["scenario"]: r["max_gamma"] for r in runs},
    }
    for name in ("train", "test", "valid"):
        for q, key in (("forces", "force"), ("energy_per_atom", "energy")):
            value = errors.get(name, {}).get(q, {}).get("rmse")
            if value is not None:
                record[f"{key}_rmse_{name}"] = value
    Path(out_summary).write_text(json.dumps(record, indent=2) + "\n")
    log(f"iteration {iteration}: {'CONVERGED' if converged else 'not converged'} ({reason}): "
        f"{message}")
    return record


def is_converged(summary_file) -> bool:
    return bool(json.loads(Path(summary_file).read_text())["converged"])


# ---- after the loop -------------------------------------------------------------------------
def record(summary_files, out_csv, out_plot, out_failures=None, failed_files=(),
           log=print):
    """record.csv (one row per iteration), the learning curve and the failure list."""
    from ..analysis.plots import learning_curve_plot
    rows = [json.loads(Path(p).read_text()) for p in summary_files]
    scenarios = list(dict.fromkeys(s for r in rows for s in r["steps_survived"]))
    columns = ["iteration", "converged", "reason", "training_set_size", "labels_added",
               "labels_failed", "candidates", "selected", "max_gamma",
               *[f"steps_{s}" for s in scenarios],
               "force_rmse_train", "force_rmse_test", "force_rmse_valid",
               "energy_rmse_train", "energy_rmse_test", "energy_rmse_valid"]
    with open(out_csv, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, **{f"steps_{s}": n for s, n in r["steps_survived"].items()}})
    learning_curve_plot(rows, out_plot)
    if rows and rows[-1]["converged"]:
        status = f"converged at iteration {rows[-1]['iteration']} ({rows[-1]['reason']})"
    elif rows:
        status = f"NOT converged after {len(rows)} iteration(s) (max_iterations)"
    else:
        status = "no iterations (max_iterations = 0)"
    if out_failures is not None:
        failures = [{"iteration": int(a.info.get("al_iteration", -1)),
                     "scenario": a.info.get("scenario"), "reason": a.info.get("failure_reason"),
                     "label_rounds": int(a.info.get("al_label_rounds", 1))}
                    for path in failed_files for a in _read(path)]
        Path(out_failures).write_text(json.dumps({"status": status, "failures": failures},
                                                 indent=2) + "\n")
    log(f"active learning: {status}; {len(rows)} iteration(s)")
    return status


def start_state(potential_file, train_file, elements, mode, out_state, log=print):
    """The active set of the stage-3 potential on the stage-2 data (iteration 0's MD)."""
    from ..active import ActiveSet
    from ..potential import MTPotential
    pot = MTPotential.load(potential_file, species=list(elements))
    aset = ActiveSet.from_training(pot, _read(train_file), mode=mode, where=str(train_file))
    aset.save(out_state)
    log(f"active set of {aset.size} rows ({aset.n_virtual} virtual) from {train_file}")


# ---- 3. label (a CLI, so that it can run under mpiexec like stage 2) ------------------------
def main(argv=None) -> int:
    from .label import _world, label_structures
    from .reference import calculator_factory

    p = argparse.ArgumentParser(description="Label the configurations selected by active learning")
    p.add_argument("command", choices=["label"])
    p.add_argument("--selected", required=True)
    p.add_argument("--reference", required=True, help="JSON of the config section 'reference'")
    p.add_argument("--mpi-prefix", default="")
    p.add_argument("--output", required=True)
    p.add_argument("--failed", required=True)
    args = p.parse_args(argv)
    reference = json.loads(args.reference)
    comm = _world()
    rank = comm.Get_rank() if comm is not None else 0
    frames = _read(args.selected)
    factory = calculator_factory(reference["name"], reference.get("kwargs"), args.mpi_prefix)
    log = (lambda msg: print(msg, flush=True)) if rank == 0 else (lambda msg: None)
    log(f"{len(frames)} selected configuration(s), reference {reference['name']}")
    stats = label_structures(frames, factory, args.output, args.failed,
                             retries=reference.get("retries", 2), comm=comm, log=log)
    log(json.dumps(stats))
    return 0


if __name__ == "__main__":
    from .label import run_mpi_safe
    sys.exit(run_mpi_safe(main))

__all__ = ["explore", "select", "refit", "decide", "record", "start_state", "is_converged",
           "fit_sets", "thresholds_for", "ILL_CONDITIONED_HINT"]
