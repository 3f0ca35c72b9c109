"""Stage 4 (rule al_md): learning-on-the-fly MD of one scenario in iteration {i}."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (the checkout's mtplib)

from mtplib.workflow.active import explore  # noqa: E402
from mtplib.workflow.logs import tee_log  # noqa: E402

sm = snakemake  # noqa: F821
with tee_log(sm.log[0], terminal=False) as log:
    summary = explore(sm.input.potential, sm.input.state, sm.params.run, sm.params.al,
                      sm.params.phases, sm.params.elements, int(sm.wildcards.i),
                      sm.output.candidates, sm.output.summary,
                      committee_file=getattr(sm.input, "committee", None), log=log)
    log(f"{summary['scenario']}: {summary['steps']}/{summary['steps_requested']} steps, "
        f"{summary['reason']}, max gamma {summary['max_gamma']:.4g}")
