"""Stage 4 start (rule al_start): the active set of the stage-3 potential on the stage-2 labels."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (the checkout's mtplib)

from mtplib.workflow.active import start_state  # noqa: E402
from mtplib.workflow.logs import tee_log  # noqa: E402

sm = snakemake  # noqa: F821
with tee_log(sm.log[0], terminal=False) as log:
    start_state(sm.input.potential, sm.input.train, sm.params.elements, sm.params.mode,
                sm.output.state, log=log)
