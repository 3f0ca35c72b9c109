"""Multi-fidelity active learning (Novikov et al. 2021, sec. 5.2-5.3), the glue between two
fidelity stages (config key fidelity_stages, rules/fidelity.smk):

0. :func:`sparsify_previous` (the stage's ``sparsify``): the previous stage's final training
   set reduced to the configurations its final potential's active set needs (sec. 5.2.1),
   with a seed scan on the full and on the kept set, both on the previous stage's test set.
1. :func:`collect`: the previous stage's final (or sparsified) training set, ``md_frames``
   frames of MTP MD with active learning off, and the held-out test set of stage 2, into one
   file to relabel.
2. labelling: ``scripts/label.py`` with the stage's reference (rule fidelity_label).
3. :func:`relabel_refit`: the relabelled training and test sets, a seed scan on them
   (:func:`mtpflow.active.refit` with refit "scan"), the active set the stage's loop starts from.
4. :func:`record`: after the last stage, every stage's potentials on the last (most accurate)
   stage's test labels, and the reference calls of each stage.
"""
from __future__ import annotations

import csv
import json
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from mtplib.active import run_md, sparsify
from mtplib.calculator import MTPCalculator
from mtplib.labeling import read_frames, write_frames_atomic
from mtplib.potential import MTPotential
from mtplib.training.scan import best_of_seeds, error_sets

from .active import isolated_energies, refit

MD_SETS = ("train", "md")       # fidelity_set of the frames that are trained on


def md_frames(potential_file, runs, phases, elements, count, log=print):
    """`count` frames of plain MTP MD (no active set), spread evenly over `runs` (MDRun), each
    run sampled at even intervals after its start."""
    runs = list(runs)
    if count <= 0 or not runs:
        return []
    per_run = [count // len(runs) + (k < count % len(runs)) for k in range(len(runs))]
    frames = []
    with tempfile.TemporaryDirectory() as tmp:
        for run, n in zip(runs, per_run):
            if n == 0:
                continue
            atoms = run.start_structure(phases, where=f"active_learning.scenarios[{run.scenario}]")
            calc = MTPCalculator(potential_file, species=list(elements))
            trajectory = Path(tmp) / f"{run.name}.extxyz"
            result = run_md(None, atoms, calculator=calc, ensemble=run.ensemble,
                            temperature=run.temperature, steps=run.steps, timestep=run.timestep,
                            pressure=run.pressure, seed=run.seed, trajectory=trajectory,
                            trajectory_interval=max(1, run.steps // n),
                            progress_interval=max(1, run.steps // 4), scenario=run.name,
                            log=log, **run.md_start_kwargs())
            sampled = [a for a in read_frames(trajectory) if int(a.info.get("step", 0)) > 0][:n]
            for a in sampled:
                a.info["phase"] = run.name
            frames += sampled
            log(f"{run.name}: {result.steps} of {run.steps} steps ({result.reason}), "
                f"{len(sampled)} of {n} frames")
    return frames


def _test_rmse(errors):
    """(energy meV/atom, force eV/Å) RMSE of error_metrics; None where absent."""
    return {"energy_per_atom_rmse": errors.get("energy_per_atom", {}).get("rmse"),
            "forces_rmse": errors.get("forces", {}).get("rmse")}


def sparsify_previous(train_file, potential_file, test_file, isolated_file, elements, mtp,
                      fit_settings, al, threshold, stage, out_kept, out_summary, log=print):
    """The previous stage's final training set reduced to the configurations that its final
    potential's maxvol active set needs (``mtplib.active.sparsify`` with the loop's
    selection_mode and selection weights, the tol and regularization of
    ``ActiveSet.from_training``): every dropped one has grade <= `threshold` against the
    active set of the kept ones. The errors before and after, like for like: one seed scan
    (as :func:`mtpflow.active.refit` with refit "scan") on the full and one on the kept set,
    both on the previous stage's test set (its labels, its isolated-atom energies)."""
    images = read_frames(train_file)
    potential = MTPotential.load(potential_file, species=list(elements))
    sparse = sparsify(potential, images, mode=al.selection_mode, threshold=threshold,
                      where=str(train_file), weights=al.weights())
    kept = [images[k] for k in sparse.kept]
    dropped = sparse.dropped(len(images))
    log(f"stage {stage}: sparsified {train_file}: kept {len(kept)} of {len(images)} "
        f"configurations ({sparse.rounds} maxvol round(s))")
    test = read_frames(test_file)
    kwargs = dict(fit_settings.fit_kwargs(), isolated_energies=isolated_energies(isolated_file),
                  log=log)
    errors = {}
    for name, fit_set in (("before", images), ("kept", kept)):
        if name == "kept" and not dropped:     # the same set: the same (deterministic) scan
            errors["kept"] = errors["before"]
            break
        log(f"seed scan on the {'full' if name == 'before' else 'kept'} training set "
            f"({len(fit_set)} configurations)")
        _, seed, pot = best_of_seeds(fit_set, mtp.initial_potential(elements),
                                     fit_settings.seed_list, fit_settings.metric,
                                     test_images=test, **kwargs)
        test_errors = error_sets(pot, {"test": test}).get("test", {})
        errors[name] = {"configurations": len(fit_set), "seed": int(seed),
                        **_test_rmse(test_errors), "test": test_errors}
    write_frames_atomic(out_kept, kept)
    summary = {"stage": stage, "train": str(train_file), "potential": str(potential_file),
               "test": str(test_file), "mode": al.selection_mode,
               "selection_weights": al.weights().as_dict(), "threshold": float(threshold),
               "before": len(images), "kept": len(kept), "dropped": len(dropped),
               "rounds": int(sparse.rounds),
               "max_dropped_gamma": float(sparse.gamma[dropped].max()) if dropped else None,
               "kept_keys": [[a.info.get("phase"), int(a.info.get("index", -1))] for a in kept],
               "errors": errors}
    Path(out_summary).write_text(json.dumps(summary, indent=2) + "\n")
    b, k = errors["before"], errors["kept"]
    log(f"stage {stage}: sparsified the previous training set {len(images)} -> {len(kept)} "
        f"configurations; test RMSE of a seed scan (previous stage's labels): energy "
        f"{_eva(b['energy_per_atom_rmse'])} -> {_eva(k['energy_per_atom_rmse'])} meV/atom, "
        f"forces {_eva(b['forces_rmse'])} -> {_eva(k['forces_rmse'])} eV/Å")
    return summary


def collect(train_file, test_file, potential_file, runs, phases, elements, count, out_structures,
            out_summary, sparsify_summary=None, log=print):
    """The structures to relabel, tagged ``fidelity_set`` (train | md | test) and numbered
    (``index``; the old one kept as ``source_index``) so that the labelling's (phase, index)
    keys are unique; their old labels are dropped. `sparsify_summary`: the summary.json of
    :func:`sparsify_previous` when `train_file` is its kept set (the count before is recorded
    as ``sparsified_from``)."""
    groups = {"train": read_frames(train_file),
              "md": md_frames(potential_file, runs, phases, elements, count, log=log),
              "test": read_frames(test_file)}
    frames = []
    for tag, group in groups.items():
        for atoms in group:
            new = atoms.copy()          # without the old calculator's results
            new.info["source_index"] = int(atoms.info.get("index", -1))
            new.info["fidelity_set"] = tag
            new.info["index"] = len(frames)
            frames.append(new)
    write_frames_atomic(out_structures, frames)
    summary = {tag: len(group) for tag, group in groups.items()}
    summary["md_requested"] = int(count)
    if sparsify_summary:
        summary["sparsified_from"] = int(json.loads(Path(sparsify_summary).read_text())["before"])
    Path(out_summary).write_text(json.dumps(summary, indent=2) + "\n")
    log(f"to relabel: {summary['train']} training"
        + (f" (sparsified from {summary['sparsified_from']})" if sparsify_summary else "")
        + f", {summary['md']} MD (of {count}), "
        f"{summary['test']} test configurations")
    return summary


def relabel_refit(previous_potential, labelled_file, failed_file, isolated_file, elements, mtp,
                  fit_settings, al, stage, out_train, out_test, out_potential, out_state,
                  out_errors, out_summary, valid_data=None, log=print):
    """Split the relabelled frames into the training (train + md) and test sets, refit by the
    seed scan on them, and record the previous stage's potential on the new test labels."""
    labelled = read_frames(labelled_file)
    for atoms in labelled:
        if atoms.info.get("fidelity_set") != "md":
            atoms.info["index"] = int(atoms.info.pop("source_index"))
    train = [a for a in labelled if a.info["fidelity_set"] in MD_SETS]
    test = [a for a in labelled if a.info["fidelity_set"] == "test"]
    write_frames_atomic(out_train, train)   # refit reads it as the new labels and rewrites it
    write_frames_atomic(out_test, test)
    previous = MTPotential.load(previous_potential, species=list(elements))
    before = error_sets(previous, {"test": test})
    errors = refit(previous_potential, None, out_train, out_test, isolated_file, elements, mtp,
                   fit_settings, replace(al, refit="scan", refit_max_iter=None), -1, out_train,
                   out_potential, out_state, out_errors, valid_data=valid_data, log=log)
    failed = read_frames(failed_file)
    summary = {"stage": stage, "relabelled": len(labelled), "failed": len(failed),
               "train": sum(a.info["fidelity_set"] == "train" for a in train),
               "md": sum(a.info["fidelity_set"] == "md" for a in train), "test": len(test),
               "previous_potential_test": before.get("test", {}),
               "refit_test": errors.get("test", {})}
    Path(out_summary).write_text(json.dumps(summary, indent=2) + "\n")
    rmse = [s.get("forces", {}).get("rmse") for s in (before.get("test", {}), errors.get("test", {}))]
    log(f"stage {stage}: {len(labelled)} relabelled ({len(failed)} failed), test force RMSE "
        f"of the previous potential {_eva(rmse[0])} -> refitted {_eva(rmse[1])} eV/Å")
    return summary


def _eva(value, scale=1.0):
    return "n/a" if value is None else f"{scale * value:.4g}"


def record(stages, potentials, test_file, labels_summary, relabel_summaries, iteration_files,
           elements, out_json, out_csv, sparsify_summaries=None, log=print):
    """Every stage's potentials (its start and its end) on the last stage's test labels, with
    the reference calls each stage made.

    ``potentials``: {stage: {"start": file, "end": file}}; ``relabel_summaries``: {stage: file}
    (none for the first); ``iteration_files``: {stage: [iteration.json, ...]};
    ``sparsify_summaries``: {stage: file} of the stages that sparsify (their columns
    sparsify_before and sparsify_kept; null for the others)."""
    sparsify_summaries = sparsify_summaries or {}
    test = read_frames(test_file)
    forces = np.concatenate([a.get_forces().ravel() for a in test]) if test else np.zeros(0)
    rms_force = float(np.sqrt(np.mean(forces ** 2))) if forces.size else None
    labels = json.loads(Path(labels_summary).read_text())
    rows = []
    for stage in stages:
        iterations = [json.loads(Path(p).read_text()) for p in iteration_files[stage]]
        if stage in relabel_summaries:
            relabel = json.loads(Path(relabel_summaries[stage]).read_text())
            start_calls = relabel["relabelled"] + relabel["failed"]
        else:
            start_calls = labels["labelled"] + labels["failed"]
        row = {"stage": stage, "start_reference_calls": start_calls,
               "al_reference_calls": sum(r["labels_spent"] for r in iterations),
               "iterations": len(iterations),
               "converged": bool(iterations and iterations[-1]["converged"]),
               "training_set_size": iterations[-1]["training_set_size"] if iterations else None}
        sparse = (json.loads(Path(sparsify_summaries[stage]).read_text())
                  if stage in sparsify_summaries else {})
        row["sparsify_before"], row["sparsify_kept"] = sparse.get("before"), sparse.get("kept")
        for when in ("start", "end"):
            pot = MTPotential.load(potentials[stage][when], species=list(elements))
            err = error_sets(pot, {"test": test}).get("test", {}).get("forces", {})
            row[f"{when}_force_rmse"] = err.get("rmse")
            row[f"{when}_force_relative"] = (err["rmse"] / rms_force
                                             if rms_force and "rmse" in err else None)
        rows.append(row)
        log(f"stage {stage}: {row['start_reference_calls']} + {row['al_reference_calls']} "
            f"reference calls, {row['iterations']} iteration(s); test force RMSE on the last "
            f"stage's labels: start {_eva(row['start_force_rmse'])}, end "
            f"{_eva(row['end_force_rmse'])} eV/Å ({_eva(row['end_force_relative'], 100)} % of "
            "the RMS force)")
    Path(out_json).write_text(json.dumps({"test_set": str(test_file), "test_configurations":
                                          len(test), "rms_force": rms_force, "stages": rows},
                                         indent=2) + "\n")
    with open(out_csv, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows
