"""Hull target (rule hull_learn): active learning on the relaxation of the pool, from the
stage-2 labels and the stage-3 potential; the final relaxation of the pool, the potential, the
training set and the per-iteration record (relaxations finished / stopped, selected, labels)."""
import json

from ase.io import write
from mtpflow.logs import tee_log
from mtpflow.settings import FitSettings, ReferenceSettings, build

from mtplib.active import Thresholds, learn_by_relaxation
from mtplib.active.relax import relaxation_frames
from mtplib.labeling import read_frames
from mtplib.potential import MTPotential

sm = snakemake  # noqa: F821
hull = sm.params.hull
fit_settings = build(FitSettings, sm.params.fit)
reference = build(ReferenceSettings, sm.params.reference)
with tee_log(sm.log[0]) as log:
    pool = read_frames(sm.input.pool)
    train = read_frames(sm.input.train)
    pot = MTPotential.load(sm.input.potential, species=list(sm.params.elements))
    result = learn_by_relaxation(
        pool, train, pot, reference.calculator_factory(),
        thresholds=Thresholds(gamma_select=hull["gamma_break"], gamma_break=hull["gamma_break"]),
        optimizer=hull["optimizer"], fmax=hull["fmax"], steps=hull["steps"],
        max_iterations=hull["max_iterations"], max_select=hull["max_select"],
        mode=sm.params.selection_mode, selection_weights=sm.params.selection_weights,
        fit_options=fit_settings.fit_kwargs(),
        out_dir=sm.params.out_dir,
        log=log)
    write(sm.output.relaxed, relaxation_frames(result.relaxations), format="extxyz")
    result.potential.save(sm.output.potential)
    write(sm.output.train, result.training, format="extxyz")
    labels = sum(r["labels"] for r in result.iterations)
    record = {"converged": bool(result.converged), "initial_labels": result.initial_labels,
              "labels": labels, "iterations": result.iterations}
    with open(sm.output.record, "w") as fh:
        json.dump(record, fh, indent=2)
    last = result.iterations[-1]
    log(f"hull active learning: {'converged' if result.converged else 'NOT converged'} after "
        f"{len(result.iterations)} iteration(s), {labels} labels; last relaxations: "
        f"{last['converged']} converged, {last['stopped']} stopped, "
        f"{last['not-converged']} not converged, {last['failed']} failed")
