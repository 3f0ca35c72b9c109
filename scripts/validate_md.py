"""Stage 5 (rule validate_md): MD of one validation scenario with the MTP or the reference."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (the checkout's mtplib)

from mtplib.workflow.validation import calculator, run_md  # noqa: E402
from mtplib.workflow.logs import tee_log  # noqa: E402

sm = snakemake  # noqa: F821
with tee_log(sm.log[0], terminal=False) as log:
    potential = getattr(sm.input, "potential", None)      # the reference run has none
    calc = calculator(sm.wildcards.engine, potential, sm.params.reference, sm.params.elements)
    run_md(calc, sm.params.run, sm.params.phases, sm.output.trajectory, log=log)
