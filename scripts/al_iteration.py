"""Stage 4 (checkpoint al_iteration): iteration.json, converged or not and why."""
from mtpflow.active import decide
from mtpflow.logs import tee_log

sm = snakemake  # noqa: F821
with tee_log(sm.log[0]) as log:
    decide(list(sm.input.runs), sm.input.selection, sm.input.failed, sm.input.errors,
           sm.params.gamma_break, int(sm.wildcards.i), sm.output.summary,
           convergence=sm.params.convergence, log=log)
