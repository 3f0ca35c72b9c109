"""Stage 4 (checkpoint al_iteration): iteration.json, converged or not and why."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (the checkout's mtplib)

from mtplib.workflow.active import decide  # noqa: E402
from mtplib.workflow.logs import tee_log  # noqa: E402

sm = snakemake  # noqa: F821
with tee_log(sm.log[0]) as log:
    decide(list(sm.input.runs), sm.input.selection, sm.input.failed, sm.input.errors,
           sm.params.gamma_break, int(sm.wildcards.i), sm.output.summary, log=log)
