"""Stage 3 end (rule fit_gather): the seed table, the best potential, the committee, plots."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (the checkout's mtplib)

from mtplib.workflow.fitting import gather, plots  # noqa: E402
from mtplib.workflow.logs import tee_log  # noqa: E402

sm = snakemake  # noqa: F821
with tee_log(sm.log[0]) as log:
    rows = gather(sm.input.errors, sm.input.potentials, sm.params.metric, sm.params.committee_size,
                  sm.output.table, sm.output.best, sm.output.committee, log=log)
    plots(rows, sm.output.best, sm.input.train, sm.params.elements, sm.params.fit,
          sm.params.metric, sm.output.parity, sm.output.seed_errors)
    log(f"parity plots -> {sm.output.parity}; seed spread -> {sm.output.seed_errors}")
