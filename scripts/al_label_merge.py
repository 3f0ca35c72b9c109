"""Stage 4 (rule al_label): the labelled parts of an iteration's selection (rule
al_label_part) joined in their order, and their failures."""
from mtpflow.logs import tee_log

from mtplib.labeling import read_frames, write_frames_atomic

sm = snakemake  # noqa: F821
with tee_log(sm.log[0]) as log:
    labelled = read_frames(list(sm.input.labelled))
    failed = read_frames(list(sm.input.failed))
    write_frames_atomic(sm.output.labelled, labelled)
    write_frames_atomic(sm.output.failed, failed)
    log(f"{len(sm.input.labelled)} labelling part(s) joined: {len(labelled)} labelled, "
        f"{len(failed)} failed")
