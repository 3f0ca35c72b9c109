"""Fidelity stage start (rule fidelity_collect): the previous stage's training set (or its
sparsified kept set, rule fidelity_sparsify), frames of MTP MD with active learning off and the
held-out test set, to relabel with the stage's reference."""
from mtpflow.fidelity import collect
from mtpflow.logs import tee_log
from mtpflow.settings import MDRun, build

sm = snakemake  # noqa: F821
with tee_log(sm.log[0]) as log:
    collect(sm.input.train, sm.input.test, sm.input.potential,
            [build(MDRun, run) for run in sm.params.runs], sm.params.phases, sm.params.elements,
            sm.params.md_frames, sm.output.structures, sm.output.summary,
            sparsify_summary=sm.input.sparsify if "sparsify" in sm.input.keys() else None,  # noqa: SIM118
            log=log)
