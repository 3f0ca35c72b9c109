"""Stage 2 end (rule merge_labels): the labels split once into train.extxyz and the held-out
test.extxyz (fit.test_fraction, fit.split_seed; never trained on, the "test" of every stage),
failed.extxyz and summary.json."""
import json
from pathlib import Path

from mtpflow.logs import tee_log
from mtpflow.settings import FitSettings, build

from mtplib.labeling import label_summary, read_frames, write_frames_atomic

sm = snakemake  # noqa: F821
with tee_log(sm.log[0]) as log:
    labelled = read_frames(sm.input.labelled)
    failed = read_frames(sm.input.failed)
    train, test = build(FitSettings, sm.params.fit).split(labelled)
    write_frames_atomic(sm.output.train, train)
    write_frames_atomic(sm.output.test, test)
    write_frames_atomic(sm.output.failed, failed)
    summary = label_summary(labelled, failed)
    summary["train"], summary["test"] = len(train), len(test)
    Path(sm.output.summary).write_text(json.dumps(summary, indent=2) + "\n")
    log(f"labelling: {summary['labelled']} labelled, {summary['failed']} failed, "
        f"{summary['retried']} retried -> {sm.output.train} ({len(train)}), held-out "
        f"{sm.output.test} ({len(test)})")
    for failure in summary["failures"]:
        log(f"  failed: {failure['phase']}[{failure['index']}]: {failure['reason']}")
