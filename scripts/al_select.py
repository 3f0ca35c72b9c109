"""Stage 4 (rule al_select): merge the candidates of every scenario and select by maxvol."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (the checkout's mtplib)

from mtplib.workflow.active import select  # noqa: E402
from mtplib.workflow.logs import tee_log  # noqa: E402

sm = snakemake  # noqa: F821
with tee_log(sm.log[0]) as log:
    select(sm.input.potential, sm.input.state, list(sm.input.candidates),
           getattr(sm.input, "failed", None), sm.params.al, sm.params.elements,
           int(sm.wildcards.i), sm.output.candidates, sm.output.selected, sm.output.summary,
           log=log)
