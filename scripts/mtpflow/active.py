"""Stage 4 glue, active learning: one iteration ``results/al/iter_{i:03d}/`` is five steps,
each a function here and a rule in ``rules/active.smk``:

1. :func:`explore`: learning-on-the-fly MD of one run with the previous potential and its
   active set (``mtplib.active.run_md``); candidates (gamma > gamma_select) and a JSON record.
2. :func:`select`: every run's candidates, maxvol selection (``mtplib.active.select_add``) of
   at most ``max_select``, committee picks, and the previous iteration's failed labels for a
   retry (as MLIP-2 does).
3. labelling: ``scripts/label.py`` (the stage-2 code, ``mtplib.labeling``).
4. :func:`refit`: previous training set + new labels; warm-start fit or a seed scan, the new
   active set, errors on the held-out test set of stage 2 (results/labels/test.extxyz).
5. :func:`decide`: ``iteration.json``, converged or not and why.
"""
from __future__ import annotations

import csv
import json
import zlib
from pathlib import Path

import numpy as np

from mtplib.active import ActiveSet, Committee, run_md, select_add
from mtplib.active.criteria import CloseApproach, CommitteeSpread
from mtplib.active.grid import run_schedule
from mtplib.analysis.errors import describe_metric, min_distance, write_errors_json
from mtplib.analysis.plots import learning_curve_plot
from mtplib.io import read_dataset
from mtplib.labeling import read_frames, write_frames_atomic
from mtplib.potential import MTPotential
from mtplib.structures import check_species
from mtplib.training import fit
from mtplib.training.scan import best_of_seeds, error_sets

ILL_CONDITIONED_HINT = (
    "the selection found nothing new although the MD extrapolated: the active set may be "
    "ill-conditioned (large condition number of A); consider a larger gamma_select, "
    "selection_mode 'neighborhood', or more diverse starting data")
MAX_LABEL_ROUNDS = 2   # a configuration whose labelling failed is retried once, next iteration


def isolated_energies(path):
    """{element: eV} of results/labels/isolated.json (None without a file)."""
    if not path:
        return None
    data = json.loads(Path(path).read_text())
    return data.get("energies", data) or None


def committee_of(potential, committee_file, elements):
    """The committee: the current potential first (it drives the MD), then the other
    stage-3 members."""
    members = json.loads(Path(committee_file).read_text())["members"]
    others = [MTPotential.load(p, species=list(elements)) for p in members[1:]]
    if not others:
        raise ValueError("config key 'active_learning.committee_criterion.enabled': the stage-3 "
                         "committee has one member; set fit.committee_size >= 2")
    return Committee([potential] + others)


# ---- 1. explore ---------------------------------------------------------------------------
OVERHEATED_SIGMAS = 5.0   # canonical kinetic-temperature fluctuations, sigma_T / T = sqrt(2 / 3N)


def overheated(atoms, temperature):
    """Whether a state's kinetic temperature is more than OVERHEATED_SIGMAS canonical
    fluctuations above the thermostat's: not an equilibrium state to continue from (the HfO2
    melt, continued at 4600-4800 K under a 3000 K thermostat, blew up within 4-14 steps in
    every iteration, selecting nothing)."""
    if temperature <= 0 or not atoms.has("momenta") or len(atoms) == 0:
        return False
    sigma = np.sqrt(2.0 / (3.0 * len(atoms)))
    return atoms.get_temperature() > temperature * (1.0 + OVERHEATED_SIGMAS * sigma)


def training_shortest(train_file, al) -> float | None:
    """The shortest interatomic distance of the training set, when the close-approach
    criterion needs it (active_learning.close_approach set and a training file given)."""
    if al.close_approach is None or train_file is None:
        return None
    return float(min_distance(read_frames(train_file))[0])


def explore(potential_file, state_file, run, al, phases, elements, iteration, out_candidates,
            out_summary, out_last, previous_last=None, committee_file=None, train_file=None,
            log=print):
    """Learning-on-the-fly MD of one run (an MDRun); candidates to `out_candidates`, a record,
    and the run's last accepted configuration (with velocities) to `out_last`. With
    `previous_last` (the previous iteration's, when active_learning.continue_runs), the run
    continues from there instead of its start structure. A run with a schedule (MDRun.schedule)
    runs its preparation segments first (``mtplib.active.grid.run_schedule``), unless it
    continues a state of its last segment; the record then lists the segments. `train_file`:
    the training set, whose shortest distance bounds the close-approach criterion."""
    pot = MTPotential.load(potential_file, species=list(elements))
    aset = None if al.committee_only else ActiveSet.load(state_file, pot)
    committee = committee_of(pot, committee_file, elements) if al.committee_enabled else None
    where = f"active_learning.scenarios[{run.scenario}]"
    previous = read_frames(previous_last) if previous_last else []
    # a scheduled run continues only a state of its own last segment (prepared already);
    # one accepted during the preparation (another temperature and cell) starts afresh
    continued = bool(previous) and (not run.schedule or
                                    int(previous[-1].info.get("segment", -1)) == len(run.schedule))
    if continued and overheated(previous[-1], run.temperature):
        continued = False
        log(f"iteration {iteration}, {run.name}: the previous iteration's last accepted state is "
            f"at {previous[-1].get_temperature():.0f} K, far above the thermostat's "
            f"{run.temperature:g} K (a run heating up under the potential: continuing it would "
            "repeat the same stop); starting afresh")
    # a stop where a pair crossed min_dist leaves nothing to label at the crossing (below
    # min_dist), so the same state and velocities under a barely changed potential cross
    # again (an HfO2 melt run stopped at its first step in three iterations running): the
    # run continues from its last accepted state with fresh velocities
    redrawn = continued and previous[-1].info.get("stopped_by") == CloseApproach.name
    if redrawn:
        log(f"iteration {iteration}, {run.name}: the previous iteration stopped where a pair "
            "crossed mtp.min_dist; continuing from its last accepted state with fresh "
            f"Maxwell-Boltzmann velocities at {run.temperature:g} K")
    scheduled = bool(run.schedule) and not continued
    atoms = previous[-1] if continued else run.start_structure(phases, where=where,
                                                               scaled=not scheduled)
    check_species(atoms, elements, f"config key '{where}'")
    out_candidates = Path(out_candidates)
    out_candidates.unlink(missing_ok=True)
    seed = int(run.seed) + 1000 * int(iteration)   # a fresh trajectory each iteration
    log(f"iteration {iteration}, {run.name}: {len(atoms)} atoms, {run.ensemble} at "
        f"{run.temperature:g} K, {run.steps} steps of {run.timestep} fs, "
        + ("continued from the previous iteration's last accepted state" if continued
           else "from the start structure")
        + (f", after a damped start of {run.equilibration['steps']} steps (friction "
           f"{run.equilibration['friction']:g}/fs)"
           if run.equilibration["steps"] and not continued else "")
        + (f", after a schedule of {len(run.schedule)} segment(s): " + ", ".join(
            f"{seg.steps} steps at {seg.temperature:g} K x{seg.scaling:g}" for seg in run.schedule)
           if scheduled else ""))
    md_kwargs = dict(active_set=aset, committee=committee, ensemble=run.ensemble,
                     timestep=run.timestep, pressure=run.pressure,
                     thresholds=al.thresholds(run, pot.min_dist,
                                              training_shortest(train_file, al)),
                     candidates=out_candidates, scenario=run.name, engine=al.engine(run),
                     progress_interval=max(1, run.steps // 10), log=log)
    segments = []
    if scheduled:
        plan = run.segments()
        # the grid points of a scenario share its seed and preparation segments: the run's
        # name in the seed keeps their preparations apart (independent trajectories)
        seed = int(np.random.SeedSequence([seed, zlib.crc32(run.name.encode())])
                   .generate_state(1)[0])
        done = run_schedule(pot, atoms, plan, seed=seed, **md_kwargs)
        result = done.result
        segments = [{"steps_requested": seg.steps, "temperature": seg.temperature,
                     "scaling": seg.scaling, "steps": int(r.steps), "reason": r.reason,
                     "max_gamma": float(r.max_gamma), "candidates": int(r.candidates)}
                    for seg, r in zip(plan, done.segments)]
        segments += [{"steps_requested": seg.steps, "temperature": seg.temperature,
                      "scaling": seg.scaling, "steps": 0, "reason": "not run", "max_gamma": 0.0,
                      "candidates": 0} for seg in plan[len(done.segments):]]
    else:
        result = run_md(pot, atoms, temperature=run.temperature, steps=run.steps, seed=seed,
                        thermalize=not continued or redrawn,
                        **({} if continued else run.md_start_kwargs()), **md_kwargs)
    out_candidates.touch()
    if run.schedule and continued and result.last_accepted is not None:
        result.last_accepted.info["segment"] = len(run.schedule)    # still the last segment
    if result.last_accepted is not None:
        result.last_accepted.info.pop("stopped_by", None)
        if result.stopped_by:
            result.last_accepted.info["stopped_by"] = result.stopped_by
    write_frames_atomic(out_last, [result.last_accepted] if result.last_accepted is not None
                        else [])
    summary = {"scenario": run.name, "iteration": int(iteration), "steps": int(result.steps),
               "steps_requested": int(run.steps if continued else run.steps_requested),
               "reason": result.reason,
               "message": result.message, "max_gamma": float(result.max_gamma),
               "max_force_std": float(result.max_force_std), "candidates": int(result.candidates),
               "above_gamma_max": int(result.above_max), "graded": int(result.graded),
               "graded_below_select": int(result.graded_below_select),
               "last_selected_step": int(result.last_selected_step), "continued": continued,
               "velocities_redrawn": redrawn,
               "temperature": run.temperature, "scaling": run.scaling, "seed": seed}
    if segments:
        summary["segments"] = segments
    Path(out_summary).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


# ---- 2. select ----------------------------------------------------------------------------
def select(potential_file, state_file, candidate_files, previous_failed, al, elements, iteration,
           out_candidates, out_selected, out_summary, train_file=None, log=print):
    """maxvol selection from all candidates (+ close-approach and committee picks) and the
    failed retries.

    Candidates with atoms closer than mtp.min_dist are not selected: below min_dist the radial
    basis is frozen (RBChebyshev_repuls adds a fixed core of 10^4 eV scale), so their labels
    cannot be fitted and one of them can wreck a refit. They are counted, and one WARNING
    line says to lower min_dist."""
    pool = read_frames(candidate_files)
    write_frames_atomic(out_candidates, pool)
    chosen: list[int] = []
    pot = MTPotential.load(potential_file, species=list(elements)) if pool else None
    shortest = [min_distance(a)[0] for a in pool]
    usable = [k for k, d in enumerate(shortest) if d >= pot.min_dist]
    close = [d for d in shortest if d < pot.min_dist]
    if usable and not al.committee_only:
        aset = ActiveSet.load(state_file, pot)
        picked = select_add(aset, [pool[k] for k in usable], max_count=al.max_select,
                            where=f"iteration {iteration} candidates").selected
        chosen = [usable[k] for k in picked]
    extra = al.close_approach_criteria(pot.min_dist if pot else None,
                                       training_shortest(train_file, al) if pool else None)
    if al.committee_enabled:
        extra.append(CommitteeSpread(al.committee_criterion["threshold"]))
    for criterion in extra:      # close approaches (shortest first), committee picks (largest
        for k in criterion.rank(pool):                                          # spread first)
            if len(chosen) >= al.max_select:
                break
            if k not in chosen and k in usable:
                chosen.append(k)
    new = [pool[k].copy() for k in sorted(chosen)]
    failed_before = read_frames(previous_failed) if previous_failed else []
    retry = [a for a in failed_before if int(a.info.get("al_label_rounds", 1)) < MAX_LABEL_ROUNDS]
    dropped = len(failed_before) - len(retry)
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
               "nothing_new": len(new) == 0,
               "candidates_below_min_dist": len(close),
               "shortest_candidate_distance": min(shortest) if shortest else None}
    Path(out_summary).write_text(json.dumps(summary, indent=2) + "\n")
    log(f"iteration {iteration}: {len(pool)} candidates -> {len(new)} selected, "
        f"{len(retry)} failed label(s) retried, {dropped} given up")
    if close:
        log(close_contact_warning(iteration, len(close), len(pool), min(close), pot.min_dist))
    return summary


def close_contact_warning(iteration, count, candidates, shortest, min_dist):
    """The one line that says the MD reached where the radial basis cannot follow: below
    min_dist the radial functions are frozen (and RBChebyshev_repuls adds a fixed core), so the
    reference's forces there cannot be fitted, and fitting them distorts the rest."""
    return (f"WARNING: iteration {iteration}: {count} of {candidates} candidates have atoms "
            f"closer than mtp.min_dist (shortest {shortest:.2f} Å < {min_dist:g} Å), where the "
            "potential cannot be trained: not selected; if the reference keeps such distances "
            "(short bonds at high temperature), lower mtp.min_dist below the shortest it visits")


# ---- 4. refit -----------------------------------------------------------------------------
def refit(previous_potential, previous_train, labelled, test_file, isolated_file, elements,
          mtp, fit_settings, al, iteration, out_train, out_potential, out_state, out_errors,
          valid_data=None, log=print):
    """Merge the new labels, refit (warm start or seed scan), rebuild the active set;
    `previous_train` None: the new labels alone (a fidelity stage's relabelled set)."""
    previous = read_frames(previous_train) if previous_train else []
    new = read_frames(labelled)
    everything = previous + new
    write_frames_atomic(out_train, everything)
    fit_set, test = everything, read_frames(test_file)   # the held-out set of stage 2
    prev = MTPotential.load(previous_potential, species=list(elements))
    kwargs = dict(fit_settings.fit_kwargs(max_iter=al.refit_max_iter),
                  isolated_energies=isolated_energies(isolated_file), log=log)
    how = al.refit
    if not new:
        log(f"iteration {iteration}: no new labels; the potential is kept")
        pot, how = prev, "kept"
    elif how == "warm":
        log(f"iteration {iteration}: warm-start refit on {len(fit_set)} configurations (+{len(new)})")
        pot = fit(fit_set, prev, warm_start=True, seed=int(iteration), **kwargs)
    else:
        value, seed, pot = best_of_seeds(fit_set, mtp.initial_potential(elements),
                                         fit_settings.seed_list, fit_settings.metric,
                                         test_images=test, **kwargs)
        log(f"iteration {iteration}: best seed {seed} "
            f"({describe_metric(fit_settings.metric, value)})")
    pot.save(out_potential)
    pot = MTPotential.load(out_potential, species=list(elements))   # exactly what the next MD reads
    sets = {"train": fit_set, "test": test}
    if valid_data:
        sets["valid"] = read_dataset(valid_data, species=list(elements))
    errors = {"iteration": int(iteration), "refit": how, "training_set_size": len(everything),
              "labels_added": len(new), **error_sets(pot, sets)}
    try:
        aset = ActiveSet.from_training(pot, everything, mode=al.selection_mode,
                                       where=str(out_train), weights=al.weights())
    except np.linalg.LinAlgError as err:
        train = errors["train"]
        raise RefitFailed(
            f"iteration {iteration}: the refitted potential's active set is singular ({err}); "
            f"its training errors are {train['energy_per_atom']['rmse']:.1f} meV/atom, "
            f"{train['forces']['rmse']:.3g} eV/Å: the refit has likely diverged (labels with "
            f"atoms closer than mtp.min_dist, or a failed reference, in {labelled})") from None
    aset.save(out_state)
    write_errors_json(out_errors, errors)
    return errors


class RefitFailed(RuntimeError):
    """A refit whose result cannot continue the loop; the message is the one line to show."""


# ---- 5. decide ----------------------------------------------------------------------------
def unconverged_runs(runs, gamma_break, convergence):
    """The runs that keep the loop going under the convergence criterion, with why."""
    out = []
    for r in runs:
        if r["reason"] != "finished" or r["max_gamma"] >= gamma_break:
            out.append((r, r["message"]))
        elif convergence["criterion"] == "quiet_tail" and \
                r["last_selected_step"] > r["steps"] - convergence["last_steps"]:
            out.append((r, f"a candidate at step {r['last_selected_step']}, within the last "
                           f"{convergence['last_steps']} steps"))
        elif convergence["criterion"] == "accurate_ratio" and r["graded"] and \
                r["graded_below_select"] / r["graded"] < convergence["accurate_ratio"]:
            out.append((r, f"{r['graded_below_select']} of {r['graded']} graded frames below "
                           f"gamma_select, under the accurate ratio {convergence['accurate_ratio']:g}"))
    return out


def decide(md_summaries, selection_file, failed_file, errors_file, gamma_break, iteration,
           out_summary, convergence=None, log=print):
    """iteration.json: the record of the iteration and whether the loop has converged.

    Converged when every run passes the convergence criterion (all_finished: it finished its
    steps without gamma >= gamma_break, nor a committee break or a blow-up; quiet_tail and
    accurate_ratio ask more, see the schema), or when the selection found nothing new."""
    convergence = convergence or {"criterion": "all_finished"}
    runs = [json.loads(Path(p).read_text()) for p in md_summaries]
    selection = json.loads(Path(selection_file).read_text())
    errors = json.loads(Path(errors_file).read_text())
    failed = len(read_frames(failed_file))
    going = unconverged_runs(runs, gamma_break, convergence)
    stopped = [r for r, _ in going]
    if not going:
        converged, reason = True, convergence["criterion"]
        message = (f"all {len(runs)} MD runs finished their steps with gamma < gamma_break "
                   f"= {gamma_break:g}" + ("" if reason == "all_finished"
                                            else f" and pass the {reason} criterion"))
    elif selection["nothing_new"] and selection.get("candidates_below_min_dist", 0):
        converged, reason = False, "close_contacts"
        message = (f"{len(stopped)} MD run(s) stopped early and their only candidates had atoms "
                   f"closer than mtp.min_dist (shortest "
                   f"{selection['shortest_candidate_distance']:.2f} Å), where the potential "
                   "cannot be trained: lower mtp.min_dist")
    elif selection["nothing_new"] and selection["retried"] == 0:
        converged, reason = True, "nothing_new"
        message = (f"{len(stopped)} MD run(s) stopped early "
                   f"({', '.join(r['scenario'] + ': ' + r['reason'] for r in stopped)}), but "
                   f"{ILL_CONDITIONED_HINT}")
    else:
        converged, reason = False, "extrapolation"
        message = (f"{len(stopped)} of {len(runs)} MD run(s) not converged: "
                   + "; ".join(f"{r['scenario']}: {why}" for r, why in going))
    record = {
        "iteration": int(iteration), "converged": converged, "reason": reason,
        "message": message, "training_set_size": errors["training_set_size"],
        "labels_added": errors["labels_added"], "labels_failed": failed,
        "candidates": selection["candidates"], "selected": selection["selected"],
        "retried": selection["retried"], "refit": errors["refit"],
        "labels_spent": errors["labels_added"] + failed,
        "above_gamma_max": sum(r.get("above_gamma_max", 0) for r in runs),
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
def record(summary_files, out_csv, out_plot, out_failures=None, failed_files=(), log=print,
           empty_status="no iterations (max_iterations = 0)"):
    """record.csv (one row per iteration), the learning curve and the failure list;
    ``empty_status`` says why there is no iteration, if none ran."""
    rows = [json.loads(Path(p).read_text()) for p in summary_files]
    scenarios = list(dict.fromkeys(s for r in rows for s in r["steps_survived"]))
    sets = [s for s in ("train", "test", "valid") if any(f"force_rmse_{s}" in r for r in rows)]
    units = {"force": "eV_per_A", "energy": "meV_per_atom"}     # the units of errors.json
    errors = {f"{q}_rmse_{s}_{units[q]}": f"{q}_rmse_{s}" for q in units for s in sets}
    columns = ["iteration", "converged", "reason", "training_set_size", "labels_added",
               "labels_failed", "labels_spent", "candidates", "selected", "above_gamma_max",
               "max_gamma", *[f"steps_{s}" for s in scenarios], *errors]
    with open(out_csv, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, **{f"steps_{s}": n for s, n in r["steps_survived"].items()},
                             **{col: r.get(key) for col, key in errors.items()}})
    learning_curve_plot(rows, out_plot)
    if rows and rows[-1]["converged"]:
        status = f"converged at iteration {rows[-1]['iteration']} ({rows[-1]['reason']})"
    elif rows:
        status = f"NOT converged after {len(rows)} iteration(s) (max_iterations)"
    else:
        status = empty_status
    if out_failures is not None:
        failures = [{"iteration": int(a.info.get("al_iteration", -1)),
                     "scenario": a.info.get("scenario"), "reason": a.info.get("failure_reason"),
                     "label_rounds": int(a.info.get("al_label_rounds", 1))}
                    for a in read_frames(list(failed_files))]
        Path(out_failures).write_text(json.dumps({"status": status, "failures": failures},
                                                 indent=2) + "\n")
    log(f"active learning: {status}; {len(rows)} iteration(s)")
    return status


def start_state(potential_file, train_file, elements, mode, out_state, log=print, weights=None):
    """The active set of the stage-3 potential on the stage-2 data (iteration 0's MD);
    `weights`: active_learning.selection_weights (None: the mode's default)."""
    pot = MTPotential.load(potential_file, species=list(elements))
    aset = ActiveSet.from_training(pot, read_frames(train_file), mode=mode, where=str(train_file),
                                   weights=weights)
    aset.save(out_state)
    log(f"active set of {aset.size} rows ({aset.n_virtual} virtual{aset.weights_note}) "
        f"from {train_file}")
