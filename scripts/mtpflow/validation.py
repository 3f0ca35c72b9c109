"""Stage 5 glue, validation of the final potential against the reference calculator.

* :func:`validation_md`: one validation MD (MTP or reference) from a phase supercell or an
  amorphous box; the MTP run is graded against the final potential's active set (it goes on
  above gamma_break and counts those frames); a record with the grade, steps and densities.
* :func:`compare`: partial RDFs and ADFs of the MTP and reference trajectories (first
  `discard` fraction dropped as equilibration), plotted on the same axes, with similarity
  numbers.
* :func:`relabel_own_md`: frames of the MTP's own validation MD labelled by the reference,
  and the MTP's errors on them.
* :func:`reference_crystal_checks`: the reference's energy-volume curves and elastic
  constants of the phases, before the final potential exists.
* :func:`summarize`: ``summary.json`` (every scenario's similarity, held-out test-set errors
  of the final potential, energy-volume and elastic comparisons when configured, the force
  RMSE on frames of the MTP's own MD, and the pass/fail ``verdicts`` of
  ``mtplib.analysis.verdicts`` against ``validation.tolerances``), ``verdicts.txt``, plots.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from ase.io import read
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mtplib.active import ActiveSet, Thresholds, run_md
from mtplib.active.md import NATIVE_ENSEMBLES
from mtplib.analysis.errors import error_metrics
from mtplib.analysis.plots import parity_plots
from mtplib.analysis.properties import elastic_constants, energy_volume
from mtplib.analysis.structure import (adf, compare_curves, mass_densities, peak_positions, rdf,
                                       resolve_cutoffs, species_coordination, total_rdf)
from mtplib.analysis.verdicts import (count_failures, elastic_verdict, failed_verdict,
                                      format_verdicts, limit_verdict)
from mtplib.calculator import MTPCalculator
from mtplib.io import read_dataset
from mtplib.labeling import (ReferenceFailed, RetryingCalculator, append_frame, compute_labels,
                             read_frames, write_frames_atomic)
from mtplib.potential import MTPotential
from mtplib.structures import build_phase, repeat_to_height

from .settings import damped_start_kwargs


def _figure(n, size=3.6):
    cols = min(n, 3)
    rows = -(-n // cols)
    fig = Figure(figsize=(size * cols, size * 0.85 * rows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes


def comparison_plot(x, curves, path, xlabel, ylabel):
    """One panel per key; every labelled set of curves ({label: {key: y}}) on the same axes."""
    keys = sorted({k for c in curves.values() for k in c})
    fig, axes = _figure(max(1, len(keys)))
    for ax, key in zip(axes, keys):
        for (label, c), style in zip(curves.items(), ("-", "--", ":")):
            if key in c:
                ax.plot(x, c[key], style, label=label, lw=1.2)
        ax.set_title(key)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


FRAMES = 50     # snapshots written per validation trajectory


def validation_md(run, engine, phases, elements, out_trajectory, out_record, *, reference=None,
                  potential_file=None, state_file=None, gamma_select=2.0, gamma_break=10.0,
                  md_engine="ase", log=print):
    """One validation MD (`run`: a ValidationRun) with the MTP (graded against the active set
    in `state_file` every run.gamma_interval steps, never stopped by the grade) or with the
    reference (`reference`: ReferenceSettings; its failure ends the trajectory with a frame
    that records it, info 'md_failure'). Writes the trajectory and a JSON record: steps, why
    it stopped, the largest grade and the graded frames above gamma_select and gamma_break,
    and the mass density (g/cm³) of the frames written."""
    atoms = run.start_structure(phases, engine)
    steps = run.steps_of(engine)
    equilibration = int(run.equilibration["steps"])
    aset, pot, calc, thresholds = None, None, None, None
    if engine == "mtp":
        pot = MTPotential.load(potential_file, species=list(elements))
        aset = ActiveSet.load(state_file, pot)
        # gamma_break = inf: the run is graded, not stopped; frames above are counted below
        thresholds = Thresholds(gamma_select=gamma_select, gamma_break=float("inf"),
                                interval=run.gamma_interval)
    else:
        calc = RetryingCalculator(reference.calculator_factory(
            symbols=atoms.get_chemical_symbols()), retries=reference.retries,
            timeout=reference.timeout, log=log)
    native = engine == "mtp" and md_engine == "native" and run.ensemble in NATIVE_ENSEMBLES
    out = Path(out_trajectory)
    tmp = out.with_name(out.name + ".tmp")
    tmp.unlink(missing_ok=True)
    record = {"scenario": run.name, "engine": engine, "atoms": len(atoms),
              "formula": atoms.get_chemical_formula(), "ensemble": run.ensemble,
              "temperature": run.temperature, "steps_requested": equilibration + steps,
              "equilibration_steps": equilibration, "timestep_fs": run.timestep}
    try:
        result = run_md(pot, atoms, active_set=aset, calculator=calc, ensemble=run.ensemble,
                        temperature=run.temperature, steps=steps, timestep=run.timestep,
                        pressure=run.pressure, thresholds=thresholds, seed=run.seed,
                        trajectory=tmp, trajectory_interval=max(1, steps // FRAMES),
                        progress_interval=max(1, steps // 10), scenario=run.name, log=log,
                        engine="native" if native else "ase",
                        **damped_start_kwargs(run.equilibration))
        record.update(steps=int(result.steps), reason=result.reason, message=result.message)
        if engine == "mtp":
            gammas = np.array([g for _, g in result.history], float)
            gammas = gammas[np.isfinite(gammas)]
            record["gamma"] = {
                "max": float(gammas.max()) if len(gammas) else None, "graded": int(len(gammas)),
                "interval": run.gamma_interval, "gamma_select": gamma_select,
                "gamma_break": gamma_break,
                "above_select": int(np.count_nonzero(gammas > gamma_select)),
                "above_break": int(np.count_nonzero(gammas >= gamma_break))}
        log(f"{run.name} ({engine}): {result.steps} of {equilibration + steps} steps, "
            f"{result.reason}, {len(atoms)} atoms, final T {atoms.get_temperature():.0f} K"
            + (f", max gamma {record['gamma']['max']:.4g}, {record['gamma']['above_break']} of "
               f"{record['gamma']['graded']} graded frames at or above gamma_break "
               f"{gamma_break:g}" if engine == "mtp" and record["gamma"]["graded"] else ""))
    except ReferenceFailed as err:
        failed = atoms.copy()
        failed.info.update(md_failure=str(err), md_failed_attempts=len(calc.failures))
        append_frame(tmp, failed)
        record.update(steps=None, reason="reference failed", message=str(err))
        log(f"{run.name} (reference): MD stopped, {err}; recorded in the validation summary")
    frames = read(tmp, index=":", format="extxyz") if tmp.exists() else []
    rho = mass_densities(frames) if frames else np.zeros(0)
    record["density_g_cm3"] = {"first": float(rho[0]), "last": float(rho[-1]),
                               "mean_after_equilibration": float(np.mean(
                                   rho[int(0.2 * len(rho)):]))} if len(rho) else None
    Path(out_record).write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(out)
    return record


def md_failure(trajectory) -> str | None:
    """The failure a validation MD recorded in its last frame (scripts/validate_md.py)."""
    last = read(trajectory, index=-1)
    return last.info.get("md_failure")


def structure(images, r, g, density, cutoffs, elements, adf_bins):
    """Coordination numbers per species (within `cutoffs`) and the ADF of `images`."""
    theta, p, counts = adf(images, cutoffs, adf_bins, elements)
    return {"coordination": species_coordination(images, cutoffs, elements),
            "number_density": {k: float(v) for k, v in density.items()},
            "adf_angles": counts}, theta, p


def compare(mtp_trajectory, reference_trajectory, rdf_settings, adf_settings, elements, out_json,
            out_rdf, out_adf, records=None, coordination_cutoffs=None, discard=0.2):
    """RDF (partials and total), ADF and coordination numbers of the MTP trajectory, and with
    a reference trajectory (None: not compared) the same of it, plotted together, with
    similarity numbers: per-pair integrated |difference| and first-peak shift. `records`
    ({engine: path}) are validation_md's records, copied in (grade, steps, densities).
    Coordination cutoffs: `coordination_cutoffs` (number, map or None: the first minimum of
    each partial RDF of the reference, else of the MTP run); the ADF's: adf_settings."""
    def frames(path):
        images = read(path, index=":")
        return images[int(discard * len(images)):] or images

    result = {"md": {k: json.loads(Path(v).read_text()) for k, v in (records or {}).items()}}
    failure = md_failure(reference_trajectory) if reference_trajectory else None
    mtp = frames(mtp_trajectory)
    r, g_mtp, rho_mtp = rdf(mtp, rdf_settings["r_max"], rdf_settings["bins"], elements)
    if len(rho_mtp) > 1:
        g_mtp["total"] = total_rdf(g_mtp, rho_mtp)
    curves_g, curves_p = {"MTP": g_mtp}, {}
    partial = {k: v for k, v in g_mtp.items() if k != "total"}
    ref = None
    if reference_trajectory and not failure:
        ref = frames(reference_trajectory)
        _, g_ref, rho_ref = rdf(ref, rdf_settings["r_max"], rdf_settings["bins"], elements)
        if len(rho_ref) > 1:
            g_ref["total"] = total_rdf(g_ref, rho_ref)
        curves_g["reference"] = g_ref
        partial = {k: v for k, v in g_ref.items() if k != "total"}
    # one set of cutoffs for both runs (the reference's first minima when there is one)
    cutoffs = resolve_cutoffs(adf_settings["cutoffs"], elements, r, partial)
    cn_cutoffs = resolve_cutoffs(coordination_cutoffs, elements, r, partial)
    result["frames"] = {"mtp": len(mtp)}
    result["adf_cutoffs"] = cutoffs
    result["coordination_cutoffs"] = cn_cutoffs
    result["structure"] = {}
    result["structure"]["mtp"], theta, p_mtp = structure(mtp, r, g_mtp, rho_mtp, cn_cutoffs,
                                                         elements, adf_settings["bins"])
    result["structure"]["mtp"]["adf_cutoffs"] = cutoffs
    curves_p["MTP"] = p_mtp
    if failure:          # the reference MD failed (after its retries): recorded, not compared
        result["error"] = failure
    if ref is not None:
        result["frames"]["reference"] = len(ref)
        result["structure"]["reference"], _, p_ref = structure(
            ref, r, g_ref, rho_ref, cn_cutoffs, elements, adf_settings["bins"])
        curves_p["reference"] = p_ref
        result["rdf"] = compare_curves(r, g_mtp, g_ref)
        result["adf"] = compare_curves(theta, p_mtp, p_ref)
        pairs = [k for k in result["rdf"] if k != "total"]
        result["rdf_integrated_absolute_difference"] = float(np.mean(
            [result["rdf"][k]["integrated_absolute_difference"] for k in pairs]))
        result["adf_integrated_absolute_difference"] = float(np.mean(
            [v["integrated_absolute_difference"] for v in result["adf"].values()])) \
            if result["adf"] else None
    else:
        result["rdf_first_peaks_mtp"] = {k: (peak_positions(r, v) or [None])[0]
                                         for k, v in g_mtp.items()}
    if failure and len(curves_g) == 1:
        for out, what in ((out_rdf, "RDF"), (out_adf, "ADF")):
            fig, axes = _figure(1)
            axes[0].text(0.5, 0.5, f"no reference {what}: {failure}", ha="center", wrap=True,
                         transform=axes[0].transAxes, fontsize="small")
            fig.savefig(out, dpi=110)
    else:
        comparison_plot(r, curves_g, out_rdf, "r (Å)", "g(r)")
        comparison_plot(theta, curves_p, out_adf, "angle (degrees)", "density (1/degree)")
    Path(out_json).write_text(json.dumps(result, indent=2) + "\n")
    return result


def own_md_frames(trajectory, n_frames):
    """`n_frames` evenly spaced frames of an MTP validation trajectory after its first fifth
    (equilibration), never its failure record."""
    images = [a for a in read(trajectory, index=":") if "md_failure" not in a.info]
    images = images[int(0.2 * len(images)):] or images
    picks = np.unique(np.linspace(0, len(images) - 1, min(n_frames, len(images))).astype(int))
    return [images[int(k)] for k in picks] if images else []


def relabel_own_md(trajectory, potential_file, reference, elements, n_frames, out_frames,
                   out_json, log=print):
    """Label `n_frames` frames of the MTP's own validation trajectory with the reference
    (reference failures are recorded, not fatal); their frames to `out_frames`, and to
    `out_json` the MTP's errors on them (error_metrics; 'rmse': the force RMSE in eV/Å)."""
    calc = RetryingCalculator(reference.calculator_factory(symbols=list(elements)),
                              retries=reference.retries, timeout=reference.timeout, log=log)
    labelled, failed = [], 0
    frames = own_md_frames(trajectory, n_frames)
    for k, atoms in enumerate(frames):
        try:
            labelled.append(compute_labels(atoms, calc))
        except Exception as exc:       # a reference failure is recorded, not fatal
            failed += 1
            log(f"{trajectory} frame {k} (step {atoms.info.get('step')}): the reference "
                f"failed: {type(exc).__name__}: {exc}")
    write_frames_atomic(out_frames, labelled)
    result = {"rmse": None, "frames": len(labelled), "failed": failed, "errors": None}
    if labelled:
        pot = MTPotential.load(potential_file, species=list(elements))
        result["errors"] = error_metrics(labelled, pot.evaluate_many(labelled))
        result["rmse"] = result["errors"]["forces"]["rmse"]
        log(f"{trajectory}: force RMSE {result['rmse']:.4g} eV/Å on {len(labelled)} of its "
            f"frames relabelled by the reference ({failed} failed)")
    Path(out_json).write_text(json.dumps(result, indent=2) + "\n")
    return result


def md_verdicts(phase, record) -> list:
    """Verdicts of an MTP validation MD's record (validation_md): it ran its full length, and
    no graded frame reached gamma_break."""
    if not record:
        return []
    rows = [limit_verdict(phase, "MTP MD steps not run", record["steps_requested"]
                          - (record["steps"] or 0), 0, "steps",
                          tolerance=f"0 of {record['steps_requested']} ({record['reason']})")]
    gamma = record.get("gamma")
    if gamma:
        rows.append(limit_verdict(
            phase, f"frames with gamma ≥ gamma_break ({gamma['graded']} graded, max "
                   f"{gamma['max'] if gamma['max'] is None else round(gamma['max'], 3)})",
            gamma["above_break"], 0, "frames",
            tolerance=f"none at or above gamma_break = {gamma['gamma_break']:g}"))
    return rows


def rdf_verdicts(phase, rdf_comparison, tol) -> list:
    """Per pair (and the total g(r)): integrated |difference| and first-peak shift."""
    rows = []
    for pair, c in rdf_comparison.items():
        rows.append(limit_verdict(phase, f"RDF {pair} integrated |difference|",
                                  c["integrated_absolute_difference"], tol["rdf_difference"], "Å"))
        shift = c["first_peak_shift"]
        if shift is None:
            rows.append(failed_verdict(phase, f"RDF {pair} first peak shift", "no first peak"))
        else:
            rows.append(limit_verdict(phase, f"RDF {pair} first peak shift", abs(shift),
                                      tol["rdf_first_peak_shift"], "Å"))
    return rows


def structure_summary(data) -> dict:
    """The figures of one validation scenario for the summary: grade, densities (g/cm³; under
    NPT, the density reached), coordination numbers per species, ADF difference."""
    md = data.get("md", {})
    out = {}
    for engine in ("mtp", "reference"):
        record = md.get(engine)
        if record:
            out[f"atoms_{engine}"] = record["atoms"]
            out[f"steps_{engine}"] = record["steps"]
            out[f"density_{engine}_g_cm3"] = (record["density_g_cm3"] or {}).get(
                "mean_after_equilibration")
        if engine in data.get("structure", {}):
            out[f"coordination_{engine}"] = data["structure"][engine]["coordination"]
    gamma = md.get("mtp", {}).get("gamma") or {}
    out["max_gamma"] = gamma.get("max")
    out["frames_above_gamma_break"] = gamma.get("above_break")
    out["adf_integrated_absolute_difference"] = data.get("adf_integrated_absolute_difference")
    return out


def format_structure(s) -> str:
    """One line of structure_summary."""
    def cn(c):
        return ", ".join(f"{a} {v['total']:.2f}" for a, v in c.items())
    parts = []
    for engine in ("mtp", "reference"):
        if s.get(f"density_{engine}_g_cm3") is not None:
            parts.append(f"{engine} density {s[f'density_{engine}_g_cm3']:.3f} g/cm³")
        if s.get(f"coordination_{engine}"):
            parts.append(f"{engine} coordination {cn(s[f'coordination_{engine}'])}")
    if s.get("max_gamma") is not None:
        parts.append(f"max gamma {s['max_gamma']:.3g}, {s['frames_above_gamma_break']} frames "
                     "at or above gamma_break")
    return "; ".join(parts) or "no MD record"


def check_cells(phases, validation, min_height=0.0, log=print) -> dict:
    """{phase: cell} of the energy-volume and elastic checks (empty when neither is
    configured); `min_height` > 0 (a Γ-only reference): each cell repeated to at least that
    height (Å)."""
    if not (validation.energy_volume or validation.elastic):
        return {}
    cells = {phase: build_phase(phase, phases[phase]) for phase in phases}
    if min_height > 0:
        cells = {phase: repeat_to_height(unit, min_height) for phase, unit in cells.items()}
        log("energy-volume and elastic cells repeated to >= "
            f"{min_height:g} Å for the Γ-only reference: " + ", ".join(
                f"{phase} {len(unit)} atoms" for phase, unit in cells.items()))
    return cells


def crystal_checks(calc, cells, validation, log=print) -> dict:
    """{"energy_volume": {phase: {"volumes", "energies"} per atom}, "elastic": {phase: C_ij in
    GPa}} of `cells` with `calc`, as validation.energy_volume and validation.elastic ask;
    a phase whose calculation fails (an SCF) gets {"error": ...} instead, not raised. All
    energy-volume curves first, then the elastic constants (a calculator that reuses its last
    wavefunction sees the same sequence of cells on every run)."""
    out = {"energy_volume": {}, "elastic": {}}
    for key, enabled, compute in (("energy_volume", validation.energy_volume, energy_volume),
                                  ("elastic", validation.elastic, elastic_constants)):
        for phase, unit in (cells.items() if enabled else ()):
            try:
                value = compute(unit, calc)
            except Exception as exc:       # a reference failure must not lose the summary
                out[key][phase] = {"error": f"{type(exc).__name__}: {exc}"}
                log(f"{key.replace('_', '-')} of {phase} failed: {exc}")
                continue
            out[key][phase] = ({"volumes": value[0].tolist(), "energies": value[1].tolist()}
                               if key == "energy_volume" else np.asarray(value).tolist())
    return out


def reference_crystal_checks(reference, phases, elements, validation, out_json, min_height=0.0,
                             log=print) -> dict:
    """crystal_checks of the reference calculator to `out_json`: they need no potential, so
    they run beside stages 1-4 instead of after the final fit."""
    cells = check_cells(phases, validation, min_height, log)
    calc = (RetryingCalculator(reference.calculator_factory(symbols=list(elements)),
                               retries=reference.retries, timeout=reference.timeout, log=log)
            if cells else None)
    result = crystal_checks(calc, cells, validation, log)
    Path(out_json).write_text(json.dumps(result) + "\n")
    log(f"reference energy-volume ({len(result['energy_volume'])} phases) and elastic "
        f"constants ({len(result['elastic'])} phases) to {out_json}")
    return result


def paired_check(checks, key, phase):
    """({label: result}, failure) of one check (`key`: "energy_volume" or "elastic") of one
    phase in crystal_checks' results per label ("MTP", "reference"); failure: None, or
    ("<label>: <error>", the error's type for the verdict) of the first label that has no
    result."""
    got = {label: c[key].get(phase, {"error": "not computed"}) for label, c in checks.items()}
    for label, g in got.items():
        if isinstance(g, dict) and "error" in g:
            return got, (f"{label}: {g['error']}", g["error"].partition(":")[0])
    return got, None


def summarize(similarity_files, names, runs, own_md_files, potential_file, test_file,
              reference_checks_file, phases, elements, validation, out_summary, out_parity,
              out_ev, out_verdicts, min_height=0.0, stage_test_file=None, log=print):
    """summary.json with the verdicts table, verdicts.txt, the held-out test set's parity plot
    of the final potential; the energy-volume curves (and elastic constants) of every phase
    when configured, the MTP's against `reference_checks_file` (reference_crystal_checks;
    None: none computed, a failed verdict per phase). `own_md_files`: relabel_own_md's
    records, one per scenario in `names` order (empty: validation.md_force_frames is 0).
    `min_height` > 0 (a Γ-only reference): the phases' cells of those two checks are repeated
    to at least that height (Å), as reference_crystal_checks repeats them.
    `stage_test_file` (active_learning.final_test_fraction > 0, when `test_file` is the final
    fit's test set): stage 2's held-out set, whose errors and own-MD ratio are reported too."""
    tol = validation.tolerances
    pot = MTPotential.load(potential_file, species=list(elements))
    summary = {"potential": str(potential_file), "test_set": str(test_file), "scenarios": {}}
    verdicts = []
    for name, path in zip(names, similarity_files):
        summary["scenarios"][name] = json.loads(Path(path).read_text())
    test = read_frames(test_file)
    sets = {"test": (test, pot.evaluate_many(test))} if test else {}
    if validation.valid_data:
        valid = read_dataset(validation.valid_data, species=list(elements))
        sets["valid"] = (valid, pot.evaluate_many(valid))
    summary["errors"] = {k: error_metrics(*v) for k, v in sets.items()}
    parity_plots(sets, out_parity)
    if stage_test_file:
        stage_test = read_frames(stage_test_file)
        summary["errors"]["stage_test"] = error_metrics(stage_test, pot.evaluate_many(stage_test))
    names_ev = list(phases) if validation.energy_volume else []
    checks = {"MTP": crystal_checks(MTPCalculator(potential_file, species=list(elements)),
                                    check_cells(phases, validation, min_height, log), validation,
                                    log),
              "reference": (json.loads(Path(reference_checks_file).read_text())
                            if reference_checks_file else {"energy_volume": {}, "elastic": {}})}
    fig, axes = _figure(max(1, len(names_ev)))
    summary["energy_volume"] = {}
    summary["elastic"] = {}
    for ax, phase in zip(axes, names_ev):
        got, failure = paired_check(checks, "energy_volume", phase)
        if failure:                    # a reference failure (SCF) must not lose the summary
            error, reason = failure
            summary["energy_volume"][phase] = {"error": error}
            verdicts.append(failed_verdict(phase, "E-V RMSE", reason))
            log(f"energy-volume of {phase} failed: {error}")
            continue
        curves = {label: (np.array(g["volumes"]), np.array(g["energies"]))
                  for label, g in got.items()}
        entry = {}
        for label, (v, e) in curves.items():
            ax.plot(v, e, "o-" if label == "MTP" else "s--", label=label)
            c2, c1, _ = np.polyfit(v, e, 2)
            entry[f"v0_{label}"] = float(-c1 / (2 * c2))
        entry["energy_rmse_meV_per_atom"] = float(1000 * np.sqrt(np.mean(
            (curves["MTP"][1] - curves["reference"][1]) ** 2)))
        summary["energy_volume"][phase] = entry
        verdicts.append(limit_verdict(phase, "E-V RMSE", entry["energy_rmse_meV_per_atom"],
                                      tol["energy_volume_rmse"], "meV/atom"))
        ax.set_title(phase)
        ax.set_xlabel("volume (Å³/atom)")
        ax.set_ylabel("energy (eV/atom)")
        ax.legend(fontsize="small")
    if not names_ev:
        axes[0].text(0.5, 0.5, "energy_volume: false", ha="center", transform=axes[0].transAxes)
    fig.tight_layout()
    fig.savefig(out_ev, dpi=110)
    if validation.elastic:
        for phase in phases:
            got, failure = paired_check(checks, "elastic", phase)
            if failure:
                error, reason = failure
                summary["elastic"][phase] = {"error": error}
                verdicts.append(failed_verdict(phase, "elastic C_ij", reason))
                log(f"elastic constants of {phase} failed: {error}")
                continue
            c = {label: np.array(g) for label, g in got.items()}
            summary["elastic"][phase] = {
                "C_mtp_GPa": np.round(c["MTP"], 2).tolist(),
                "C_reference_GPa": np.round(c["reference"], 2).tolist(),
                "max_abs_difference_GPa": float(np.abs(c["MTP"] - c["reference"]).max())}
            verdicts.append(elastic_verdict(phase, c["MTP"], c["reference"],
                                            tol["elastic_relative"], tol["elastic_absolute"]))
    test_rmse = summary["errors"].get("test", {}).get("forces", {}).get("rmse")
    stage_test_rmse = summary["errors"].get("stage_test", {}).get("forces", {}).get("rmse")
    summary["structure"] = {}
    for name in names:
        phase = f"{runs[name]['phase'] or 'amorphous'} ({name})"
        data = summary["scenarios"][name]
        summary["structure"][name] = structure_summary(data)
        verdicts.extend(md_verdicts(phase, data.get("md", {}).get("mtp")))
        if "error" in data:          # the reference MD failed: no comparison, a failed verdict
            verdicts.append(failed_verdict(phase, "RDF integrated |difference|", data["error"]))
            continue
        if "rdf" in data:            # compared with a reference MD
            verdicts.append(limit_verdict(phase, "RDF integrated |difference|",
                                          data["rdf_integrated_absolute_difference"],
                                          tol["rdf_difference"], "Å"))
            verdicts.extend(rdf_verdicts(phase, data["rdf"], tol))
        if own_md_files:
            own = json.loads(Path(own_md_files[names.index(name)]).read_text())
            rmse, n, n_failed = own["rmse"], own["frames"], own["failed"]
            data["own_md_force_rmse"] = {
                "rmse": rmse, "frames": n, "failed": n_failed, "test_rmse": test_rmse,
                "ratio_to_test": rmse / test_rmse if rmse is not None and test_rmse else None}
            if stage_test_rmse:
                data["own_md_force_rmse"].update(
                    stage_test_rmse=stage_test_rmse,
                    ratio_to_stage_test=rmse / stage_test_rmse if rmse is not None else None)
            summary["structure"][name]["own_md_force_rmse"] = data["own_md_force_rmse"]
            quantity = f"force RMSE, own MD ({n} frames)"
            if rmse is None:
                verdicts.append(failed_verdict(phase, quantity, "reference failed"))
            elif test_rmse is None:
                verdicts.append(failed_verdict(phase, quantity, "no test set"))
            else:
                factor = tol["md_force_rmse_factor"]
                verdicts.append(limit_verdict(
                    phase, quantity, rmse, factor * test_rmse, "eV/Å", reference=test_rmse,
                    tolerance=f"≤ {factor:g} × test RMSE = {factor * test_rmse:.4g} eV/Å"))
    summary["verdicts"] = verdicts
    summary["verdicts_failed"] = count_failures(verdicts)
    Path(out_summary).write_text(json.dumps(summary, indent=2) + "\n")
    table = format_verdicts(verdicts)
    Path(out_verdicts).write_text(table)
    for name, data in summary["scenarios"].items():
        line = comparison_line(name, data)
        if line:
            log(line)
        log(f"{name}: {format_structure(summary['structure'][name])}")
    log("validation verdicts (results/validation/verdicts.txt):\n" + table.rstrip())
    return summary


def comparison_line(name, result):
    """The log line of a scenario's comparison with its reference MD (a `compare` result);
    None when it has no reference MD."""
    if "error" in result:
        return f"{name}: not compared, {result['error']}"
    if "rdf" in result:
        return (f"{name}: RDF integrated |difference| "
                f"{result['rdf_integrated_absolute_difference']:.4f} Å, ADF "
                f"{result.get('adf_integrated_absolute_difference') or float('nan'):.4f}")
    return None
