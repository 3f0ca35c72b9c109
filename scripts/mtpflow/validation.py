"""Stage 5 glue, validation of the final potential against the reference calculator.

* :func:`compare`: partial RDFs and ADFs of the MTP and reference trajectories (first
  `discard` fraction dropped as equilibration), plotted on the same axes, with similarity
  numbers.
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

from mtplib.analysis.errors import error_metrics
from mtplib.analysis.plots import parity_plots
from mtplib.analysis.properties import elastic_constants, energy_volume
from mtplib.analysis.structure import adf, compare_curves, rdf, resolve_cutoffs
from mtplib.analysis.verdicts import (count_failures, elastic_verdict, failed_verdict,
                                      format_verdicts, limit_verdict)
from mtplib.calculator import MTPCalculator
from mtplib.io import read_dataset
from mtplib.labeling import RetryingCalculator, compute_labels, read_frames
from mtplib.potential import MTPotential
from mtplib.structures import build_phase


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


def md_failure(trajectory) -> str | None:
    """The failure a validation MD recorded in its last frame (scripts/validate_md.py)."""
    last = read(trajectory, index=-1)
    return last.info.get("md_failure")


def compare(mtp_trajectory, reference_trajectory, rdf_settings, adf_settings, elements, out_json,
            out_rdf, out_adf, discard=0.2):
    """RDF and ADF of both trajectories, plotted together, with similarity numbers."""
    def frames(path):
        images = read(path, index=":")
        return images[int(discard * len(images)):] or images

    failure = md_failure(reference_trajectory)
    if failure:          # the reference MD failed (after its retries): recorded, not compared
        result = {"error": failure}
        for out, what in ((out_rdf, "RDF"), (out_adf, "ADF")):
            fig, axes = _figure(1)
            axes[0].text(0.5, 0.5, f"no {what}: {failure}", ha="center", wrap=True,
                         transform=axes[0].transAxes, fontsize="small")
            fig.savefig(out, dpi=110)
        Path(out_json).write_text(json.dumps(result, indent=2) + "\n")
        return result
    mtp, ref = frames(mtp_trajectory), frames(reference_trajectory)
    r, g_ref, _ = rdf(ref, rdf_settings["r_max"], rdf_settings["bins"], elements)
    _, g_mtp, _ = rdf(mtp, rdf_settings["r_max"], rdf_settings["bins"], elements)
    cutoffs = resolve_cutoffs(adf_settings["cutoffs"], elements, r, g_ref)   # one set for both
    theta, p_ref, _ = adf(ref, cutoffs, adf_settings["bins"], elements)
    _, p_mtp, _ = adf(mtp, cutoffs, adf_settings["bins"], elements)
    comparison_plot(r, {"MTP": g_mtp, "reference": g_ref}, out_rdf, "r (Å)", "g(r)")
    comparison_plot(theta, {"MTP": p_mtp, "reference": p_ref}, out_adf, "angle (degrees)",
                    "density (1/degree)")
    result = {"frames": {"mtp": len(mtp), "reference": len(ref)}, "adf_cutoffs": cutoffs,
              "rdf": compare_curves(r, g_mtp, g_ref), "adf": compare_curves(theta, p_mtp, p_ref)}
    result["rdf_integrated_absolute_difference"] = float(np.mean(
        [v["integrated_absolute_difference"] for v in result["rdf"].values()]))
    result["adf_integrated_absolute_difference"] = float(np.mean(
        [v["integrated_absolute_difference"] for v in result["adf"].values()])) if result["adf"] else None
    Path(out_json).write_text(json.dumps(result, indent=2) + "\n")
    return result


def own_md_force_rmse(trajectory, pot, reference_calc, n_frames, log=print):
    """Force RMSE (eV/Å) of the MTP against the reference on `n_frames` evenly spaced frames of
    the MTP's own validation trajectory (after the equilibration fifth); (rmse, frames, failed)."""
    images = read(trajectory, index=":")
    images = images[int(0.2 * len(images)):] or images
    picks = np.unique(np.linspace(0, len(images) - 1, min(n_frames, len(images))).astype(int))
    labelled, failed = [], 0
    for k in picks:
        try:
            labelled.append(compute_labels(images[int(k)], reference_calc))
        except Exception as exc:       # a reference failure is recorded, not fatal
            failed += 1
            log(f"{trajectory} frame {int(k)}: the reference failed: {type(exc).__name__}: {exc}")
    if not labelled:
        return None, 0, failed
    return error_metrics(labelled, pot.evaluate_many(labelled))["forces"]["rmse"], len(labelled), failed


def summarize(similarity_files, names, runs, mtp_trajectories, potential_file, test_file,
              reference, phases, elements, validation, out_summary, out_parity, out_ev,
              out_verdicts, log=print):
    """summary.json with the verdicts table, verdicts.txt, the held-out test set's parity plot
    of the final potential; the energy-volume curves (and elastic constants) of every phase
    when configured."""
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
    reference_calc = RetryingCalculator(reference.calculator_factory(symbols=elements),
                                        retries=reference.retries, timeout=reference.timeout,
                                        log=log)
    calcs = {"MTP": MTPCalculator(potential_file, species=list(elements)),
             "reference": reference_calc}
    names_ev = list(phases) if validation.energy_volume else []
    fig, axes = _figure(max(1, len(names_ev)))
    summary["energy_volume"] = {}
    summary["elastic"] = {}
    for ax, phase in zip(axes, names_ev):
        unit = build_phase(phase, phases[phase])
        try:
            curves = {label: energy_volume(unit, calc) for label, calc in calcs.items()}
        except Exception as exc:       # a reference failure (SCF) must not lose the summary
            summary["energy_volume"][phase] = {"error": f"{type(exc).__name__}: {exc}"}
            verdicts.append(failed_verdict(phase, "E-V RMSE", f"{type(exc).__name__}"))
            log(f"energy-volume of {phase} failed: {exc}")
            continue
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
            unit = build_phase(phase, phases[phase])
            try:
                c = {k: elastic_constants(unit, calc) for k, calc in calcs.items()}
            except Exception as exc:
                summary["elastic"][phase] = {"error": f"{type(exc).__name__}: {exc}"}
                verdicts.append(failed_verdict(phase, "elastic C_ij", type(exc).__name__))
                log(f"elastic constants of {phase} failed: {exc}")
                continue
            summary["elastic"][phase] = {
                "C_mtp_GPa": np.round(c["MTP"], 2).tolist(),
                "C_reference_GPa": np.round(c["reference"], 2).tolist(),
                "max_abs_difference_GPa": float(np.abs(c["MTP"] - c["reference"]).max())}
            verdicts.append(elastic_verdict(phase, c["MTP"], c["reference"],
                                            tol["elastic_relative"], tol["elastic_absolute"]))
    test_rmse = summary["errors"].get("test", {}).get("forces", {}).get("rmse")
    for name, trajectory in zip(names, mtp_trajectories):
        phase = f"{runs[name]['phase']} ({name})"
        data = summary["scenarios"][name]
        if "error" in data:          # the reference MD failed: no comparison, a failed verdict
            verdicts.append(failed_verdict(phase, "RDF integrated |difference|", data["error"]))
            continue
        verdicts.append(limit_verdict(phase, "RDF integrated |difference|",
                                      data["rdf_integrated_absolute_difference"],
                                      tol["rdf_difference"], "Å"))
        if validation.md_force_frames:
            rmse, n, n_failed = own_md_force_rmse(trajectory, pot, reference_calc,
                                                  validation.md_force_frames, log=log)
            data["own_md_force_rmse"] = {"rmse": rmse, "frames": n, "failed": n_failed}
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
        if "error" in data:
            log(f"{name}: not compared, {data['error']}")
        else:
            log(f"{name}: RDF integrated |difference| "
                f"{data['rdf_integrated_absolute_difference']:.4f} Å")
    log("validation verdicts (results/validation/verdicts.txt):\n" + table.rstrip())
    return summary
