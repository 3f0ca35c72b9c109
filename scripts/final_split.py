"""Stage 4 end (rule final_split): the final fit's training and test sets, a seeded fraction
(active_learning.final_test_fraction) of everything labelled held out and added to the last
stage's held-out test set."""
import json
from pathlib import Path

from mtpflow.logs import tee_log

from mtplib.labeling import read_frames, write_frames_atomic
from mtplib.training import train_test_split

sm = snakemake  # noqa: F821
with tee_log(sm.log[0]) as log:
    labelled, stage_test = read_frames(sm.input.train), read_frames(sm.input.test)
    train, held_out = train_test_split(labelled, sm.params.fraction, sm.params.seed)
    write_frames_atomic(sm.output.train, train)
    write_frames_atomic(sm.output.test, stage_test + held_out)
    record = {"labelled": len(labelled), "train": len(train), "held_out": len(held_out),
              "stage_test": len(stage_test), "test": len(stage_test) + len(held_out),
              "fraction": sm.params.fraction, "seed": sm.params.seed}
    Path(sm.output.record).write_text(json.dumps(record, indent=2) + "\n")
    log(f"final fit: {len(train)} of {len(labelled)} labelled configurations trained on, "
        f"{len(held_out)} held out; test set {len(held_out)} + {len(stage_test)} "
        f"(stage 2's) = {record['test']}")
