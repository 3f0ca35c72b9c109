"""Stage 5 (rule validate_relabel): validation.md_force_frames frames of one MTP validation
trajectory labelled by the reference, and the MTP's errors on its own trajectory."""
from mtpflow.logs import tee_log
from mtpflow.settings import ReferenceSettings, build
from mtpflow.validation import relabel_own_md

sm = snakemake  # noqa: F821
with tee_log(sm.log[0], terminal=False) as log:
    relabel_own_md(sm.input.trajectory, sm.input.potential,
                   build(ReferenceSettings, sm.params.reference), sm.params.elements,
                   sm.params.frames, sm.output.relabelled, sm.output.own_md, log=log)
