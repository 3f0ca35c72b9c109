"""Stage 2 end (rule merge_labels): train.extxyz, failed.extxyz and summary.json."""
import json
from pathlib import Path

from mtpflow.logs import tee_log

from mtplib.labeling import label_summary, read_frames, write_frames_atomic

sm = snakemake  # noqa: F821
with tee_log(sm.log[0]) as log:
    labelled = read_frames(sm.input.labelled)
    failed = read_frames(sm.input.failed)
    write_frames_atomic(sm.output.train, labelled)
    write_frames_atomic(sm.output.failed, failed)
    summary = label_summary(labelled, failed)
    Path(sm.output.summary).write_text(json.dumps(summary, indent=2) + "\n")
    log(f"labelling: {summary['labelled']} labelled, {summary['failed']} failed, "
        f"{summary['retried']} retried -> {sm.output.train}")
    for failure in summary["failures"]:
        log(f"  failed: {failure['phase']}[{failure['index']}]: {failure['reason']}")
