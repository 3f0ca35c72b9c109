"""Stage 5 end (rule validate_summary): summary.json, test-set parity, energy-volume curves."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (the checkout's mtplib)

from mtplib.workflow.validation import summarize  # noqa: E402
from mtplib.workflow.logs import tee_log  # noqa: E402

sm = snakemake  # noqa: F821
with tee_log(sm.log[0]) as log:
    summarize(list(sm.input.similarity), sm.params.names, sm.input.potential, sm.input.train,
              sm.params.reference, sm.params.phases, sm.params.elements, sm.params.fit,
              sm.params.validation, sm.output.summary, sm.output.parity,
              sm.output.energy_volume, log=log)
