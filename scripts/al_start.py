"""Stage 4 start (rule al_start): the active set of the stage-3 potential on the stage-2 labels."""
from mtpflow.active import start_state
from mtpflow.logs import tee_log

sm = snakemake  # noqa: F821
with tee_log(sm.log[0], terminal=False) as log:
    start_state(sm.input.potential, sm.input.train, sm.params.elements, sm.params.mode,
                sm.output.state, log=log, weights=sm.params.weights)
