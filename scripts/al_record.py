"""Stage 4 end (rule al_record): record.csv, the learning curve and the label failures."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (the checkout's mtplib)

from mtplib.workflow.active import record  # noqa: E402

sm = snakemake  # noqa: F821
with open(sm.log[0], "w") as log_file:

    def log(msg):
        print(msg, flush=True)
        print(msg, file=log_file, flush=True)

    record(list(sm.input.summaries), sm.output.record,
           sm.output.curve, sm.output.failures, failed_files=list(sm.input.failed), log=log)
