"""Stage 2 end (rule merge_labels): train.extxyz, failed.extxyz and summary.json."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (the checkout's mtplib)


from mtplib.workflow.frames import write_frames_atomic  # noqa: E402
from mtplib.workflow.merge import read_all, summarize  # noqa: E402

labelled = read_all(snakemake.input.labelled)  # noqa: F821
failed = read_all(snakemake.input.failed)  # noqa: F821
write_frames_atomic(snakemake.output.train, labelled)  # noqa: F821
write_frames_atomic(snakemake.output.failed, failed)  # noqa: F821
summary = summarize(labelled, failed)
text = json.dumps(summary, indent=2)
Path(snakemake.output.summary).write_text(text + "\n")  # noqa: F821
Path(snakemake.log[0]).write_text(text + "\n")  # noqa: F821
print(
    f"labelling: {summary['labelled']} labelled, {summary['failed']} failed, "
    f"{summary['retried']} retried -> {snakemake.output.train}",  # noqa: F821
    flush=True,
)
for failure in summary["failures"]:
    print(f"  failed: {failure['phase']}[{failure['index']}]: {failure['reason']}", flush=True)
