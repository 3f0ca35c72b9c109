"""Stage 4 end (rule final_gather): the final potential of the seed scan on all data."""

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (the checkout's mtplib)

from mtplib.workflow.fitting import gather, plots  # noqa: E402
from mtplib.workflow.logs import tee_log  # noqa: E402

sm = snakemake  # noqa: F821
with tee_log(sm.log[0]) as log:
    rows = gather(sm.input.errors, sm.input.potentials, sm.params.metric, sm.params.committee_size,
                  sm.output.table, sm.output.best, sm.output.committee, log=log)
    best_errors = Path(rows[0]["potential"]).with_suffix(".json")
    shutil.copyfile(best_errors, sm.output.errors)
    plots(rows, sm.output.best, sm.input.train, sm.params.elements, sm.params.fit,
          sm.params.metric, sm.output.parity, sm.output.seed_errors)
    log(f"final potential {sm.output.best} (seed {rows[0]['seed']}), trained on {sm.input.train}")
