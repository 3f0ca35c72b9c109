"""Stage 4 end (rule al_record): record.csv, the learning curve and the label failures."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (the checkout's mtplib)

from mtplib.workflow.active import record  # noqa: E402
from mtplib.workflow.logs import tee_log  # noqa: E402

sm = snakemake  # noqa: F821
with tee_log(sm.log[0]) as log:
    record(list(sm.input.summaries), sm.output.record,
           sm.output.curve, sm.output.failures, failed_files=list(sm.input.failed), log=log)
