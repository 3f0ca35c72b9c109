"""The report's landing page: ``results/report/summary.rst`` (reStructuredText), rendered by
``snakemake --report`` as the page the report opens on (the Snakefile's ``report:``).

It gathers what a user asks first: the material and the reference, the potential (level,
species, cutoff, parameters), the validation verdicts, the error table of the final
potential (train and the held-out test set, with units), the active-learning record, and
where the plots are with what to look for in each.
"""
from __future__ import annotations

import json
from pathlib import Path

from mtplib.potential import MTPotential

# (report category, file, what to look for)
PLOTS = [
    ("Validation", "verdicts.txt", "the pass/fail table above, as text"),
    ("Validation", "energy_volume.png", "MTP and reference curves on top of each other; a "
     "shifted minimum or a different curvature means a wrong volume or bulk modulus"),
    ("Validation", "rdf.png / adf.png", "the MTP's MD against the reference's: peaks at the "
     "same distances and angles with the same heights"),
    ("Validation", "parity.png", "the final potential on the held-out test set: points on "
     "the diagonal"),
    ("Final potential", "parity.png", "train and test close to the diagonal; test errors "
     "near the train errors (no overfitting)"),
    ("Active learning", "learning_curve.png", "steps survived rising to the requested steps "
     "(converged); the test error should stay flat"),
    ("Fitting", "seed_errors.png", "the spread over seeds: a large spread means the fit "
     "depends on the start, so more seeds help"),
]


NONE = "n/a"    # a lone '-' in an rst table cell would be a bullet list


def _number(v, fmt=".4g"):
    return NONE if v is None else format(v, fmt)


def list_table(title, header, rows):
    """An rst list-table."""
    lines = [f".. list-table:: {title}", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        lines.append("   * - " + str(row[0]))
        lines += [f"     - {cell}" for cell in row[1:]]
    return "\n".join(lines) + "\n"


def _escape(text):
    """Text safe for rst and for the report's Jinja pass."""
    return (str(text).replace("\\", "\\\\").replace("*", "\\*").replace("|", "\\|")
            .replace("{", "(").replace("}", ")"))


def _phase_text(name, phase):
    if "bulk" in phase:
        return f"{name} ({phase['bulk'].get('crystalstructure') or 'bulk'})"
    if "crystal" in phase:
        return f"{name} (space group {phase['crystal']['spacegroup']})"
    return f"{name} ({phase.get('file', '')})"


def summary_rst(config, potential_file, final_errors_file, iteration_files, labels_file,
                validation_file):
    """The landing page's text."""
    elements = list(config["elements"])
    pot = MTPotential.load(potential_file, species=elements)
    errors = json.loads(Path(final_errors_file).read_text())
    labels = json.loads(Path(labels_file).read_text())
    validation = json.loads(Path(validation_file).read_text())
    iterations = [json.loads(Path(p).read_text()) for p in iteration_files]
    ref = config["reference"]
    mtp = config["mtp"]
    # Snakemake's landing view centres its content vertically, which hides the top of a page
    # taller than the window: align it to the top while this page is shown.
    out = [".. raw:: html", "", "   <style>div.items-center.justify-center.h-screen"
           "{align-items:flex-start !important}</style>", ""]
    title = f"MTP for {', '.join(elements)}: summary"
    out += [title, "=" * len(title), ""]
    out += [f"**Material**: {', '.join(elements)}; phases "
            f"{', '.join(_phase_text(n, p) for n, p in config['phases'].items())}.", ""]
    out += [f"**Reference**: ``{ref['name']}``"
            + (f" with {_escape(json.dumps(ref['kwargs']))}" if ref.get("kwargs") else "")
            + f"; {labels['labelled']} structures labelled in stage 2 ({labels['failed']} "
            f"failed), of which {labels.get('test', NONE)} are the held-out test set "
            "(results/labels/test.extxyz, never trained on).", ""]
    out += [f"**Potential** (results/final/potential.mtp): level {mtp['level']}, species "
            f"{', '.join(pot.species or elements)}, radial basis {pot.radial_basis_size} "
            f"functions from min_dist {pot.min_dist:g} Å to the cutoff {pot.max_dist:g} Å, "
            f"{pot.parameter_count} parameters.", ""]

    verdicts = validation.get("verdicts", [])
    n_fail = sum(1 for v in verdicts if not v["pass"])
    out += ["Verdicts", "--------", ""]
    if not verdicts:
        out += ["No validation quantity was computed.", ""]
    else:
        out += [f"**{len(verdicts) - n_fail} of {len(verdicts)} pass**"
                + (f"; **{n_fail} FAIL**." if n_fail else "."), ""]
        rows = [[_escape(v["phase"]), _escape(v["quantity"]),
                 f"{_number(v['value'])} {v['unit']}" if v["value"] is not None else NONE,
                 f"{_number(v['reference'])} {v['unit']}" if v["reference"] is not None
                 else NONE, _escape(v["tolerance"]),
                 ("PASS" if v["pass"] else "**FAIL**")
                 + (f" ({_escape(v['note'])})" if v.get("note") else "")]
                for v in verdicts]
        out += [list_table("Validation verdicts (tolerances: validation.tolerances)",
                           ["phase", "quantity", "value", "reference", "tolerance", "verdict"],
                           rows), ""]

    structure = validation.get("structure", {})
    if structure:
        def cn(c):
            return ", ".join(f"{a} {v['total']:.2f}" for a, v in (c or {}).items()) or NONE

        def pair(s, key):        # "{engine}" in key: mtp / reference
            values = [s.get(key.format(engine=e)) for e in ("mtp", "reference")]
            return " / ".join(NONE if v is None else _number(v) for v in values)
        rows = [[_escape(name), pair(s, "atoms_{engine}"), pair(s, "steps_{engine}"),
                 _number(s.get("max_gamma")), _number(s.get("frames_above_gamma_break")),
                 pair(s, "density_{engine}_g_cm3"),
                 f"{cn(s.get('coordination_mtp'))} / {cn(s.get('coordination_reference'))}",
                 _number((s.get("own_md_force_rmse") or {}).get("rmse"))]
                for name, s in structure.items()]
        out += [list_table("Validation MD, MTP / reference (density in g/cm³ after the first "
                           "fifth; coordination: neighbours within the first RDF minimum)",
                           ["scenario", "atoms", "steps", "max γ", "frames ≥ γ_break",
                            "density", "coordination", "own-MD force RMSE (eV/Å)"], rows), ""]

    out += ["Errors of the final potential", "-----------------------------", ""]
    rows = []
    # stage 2's held-out set alone, when the final fit's test set adds a split of the labels
    named = {**errors, "stage_test": validation.get("errors", {}).get("stage_test")}
    labels = {"test": "test (held-out)", "stage_test": "stage 2's test (held-out, part of test)"}
    for name in ("train", "test", "stage_test", "valid"):
        e = named.get(name)
        if not e:
            continue
        n = e.get("forces", {}).get("n_configs", NONE)
        rows.append([labels.get(name, name), n,
                     *[f"{_number(e.get(q, {}).get('rmse'))} / {_number(e.get(q, {}).get('mae'))}"
                       for q in ("energy_per_atom", "forces", "stress")]])
    out += [list_table("RMSE / MAE per set",
                       ["set", "configurations", "energy (meV/atom)", "forces (eV/Å)",
                        "stress (GPa)"], rows), ""]

    out += ["Active learning", "---------------", ""]
    if iterations:
        last = iterations[-1]
        status = (f"converged at iteration {last['iteration']} ({last['reason']})"
                  if last["converged"] else
                  f"not converged after {len(iterations)} iteration(s) (max_iterations)")
        labels_spent = sum(r["labels_added"] for r in iterations)
        out += [f"{status}; {labels_spent} label(s) spent beyond stage 2, final training set "
                f"{last['training_set_size']} configurations.", ""]
        rows = [[r["iteration"], r["training_set_size"], r["labels_added"], r["labels_failed"],
                 _number(r["max_gamma"]), _number(r.get("force_rmse_test"))]
                for r in iterations]
        out += [list_table("Iterations (max γ: the largest extrapolation grade of the MD runs)",
                           ["iteration", "training set", "labels added", "labels failed",
                            "max γ", "test force RMSE (eV/Å)"], rows), ""]
        runs = list(dict.fromkeys(s for r in iterations for s in r["steps_survived"]))
        rows = [[run, *[f"{r['steps_survived'][run]}/{r['steps_requested'][run]}"
                        if run in r["steps_survived"] else NONE for r in iterations]]
                for run in runs]
        out += [list_table("MD steps survived / requested, per run and iteration",
                           ["MD run", *[f"iteration {r['iteration']}" for r in iterations]],
                           rows), ""]
    else:
        out += ["No active-learning iterations (active_learning.max_iterations = 0).", ""]

    out += ["Plots", "-----", "", "Under the report's categories (left), each with a caption:",
            ""]
    out += [f"- **{cat}**: ``{name}``: {what}." for cat, name, what in PLOTS]
    out += ["", "The rule graph and run statistics are under Workflow_ and Statistics_.", ""]
    return "\n".join(out)
