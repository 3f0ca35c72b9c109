"""Stage 4 (rule al_refit): merged training set, refit potential, its active set and errors."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (the checkout's mtplib)

from mtplib.workflow.active import refit  # noqa: E402
from mtplib.workflow.logs import tee_log  # noqa: E402

sm = snakemake  # noqa: F821
with tee_log(sm.log[0], terminal=False) as log:
    errors = refit(sm.input.potential, sm.input.train, sm.input.labelled, sm.input.stage2,
                   sm.input.isolated, sm.params.elements, sm.params.mtp, sm.params.fit,
                   sm.params.al, int(sm.wildcards.i), sm.output.train, sm.output.potential,
                   sm.output.state, sm.output.errors, valid_data=sm.params.valid_data, log=log)
    log(f"training set {errors['training_set_size']} (+{errors['labels_added']}), "
        f"refit: {errors['refit']}")
