"""Multi-fidelity active learning (Novikov et al. 2021, sec. 5.2-5.3), the glue between two
fidelity stages (config key fidelity_stages, rules/fidelity.smk):

1. :func:`collect`: the previous stage's final training set, ``md_frames`` frames of MTP MD
   with active learning off, and the held-out test set of stage 2, into one file to relabel.
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

from mtplib.active import run_md
from mtplib.calculator import MTPCalculator
from mtplib.labeling import read_frames, write_frames_atomic
from mtplib.potential import MTPotential
from mtplib.training.scan import error_sets

from .active import refit

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
                            ramp_steps=run.ramp_steps, ramp_start=run.ramp_start, log=log)
            sampled = [a for a in read_frames(trajectory) if int(a.info.get("step", 0)) > 0][:n]
            for a in sampled:
                a.info["phase"] = run.name
            frames += sampled
            log(f"{run.name}: {result.steps} of {run.steps} steps ({result.reason}), "
                f"{len(sampled)} of {n} frames")
    return frames


def collect(train_file, test_file, potential_file, runs, phases, elements, count, out_structures,
            out_summary, log=print):
    """The structures to relabel, tagged ``fidelity_set`` (train | md | test) and numbered
    (``index``; the old one kept as ``source_index``) so that the labelling's (phase, index)
    keys are unique; their old labels are dropped."""
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
    Path(out_summary).write_text(json.dumps(summary, indent=2) + "\n")
    log(f"to relabel: {summary['train']} training, {summary['md']} MD (of {count}), "
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
           elements, out_json, out_csv, log=print):
    """Every stage's potentials (its start and its end) on the last stage's test labels, with
    the reference calls each stage made.

    ``potentials``: {stage: {"start": file, "end": file}}; ``relabel_summaries``: {stage: file}
    (none for the first); ``iteration_files``: {stage: [iteration.json, ...]}."""
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
