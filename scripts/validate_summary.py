"""Stage 5 end (rule validate_summary): summary.json with the verdicts, verdicts.txt, test-set
parity, energy-volume curves. Failing verdicts are listed, not fatal (validation.fail_on_verdict
makes them fatal at the end of the workflow, in the Snakefile's onsuccess)."""
from mtpflow.logs import tee_log
from mtpflow.settings import ValidationSettings, build
from mtpflow.validation import summarize

sm = snakemake  # noqa: F821
with tee_log(sm.log[0]) as log:
    summarize(list(sm.input.similarity), sm.params.names, sm.params.runs,
              list(sm.input.own_md), sm.input.potential, sm.input.test,
              sm.input.reference_checks or None, sm.params.phases,
              sm.params.elements, build(ValidationSettings, sm.params.validation),
              sm.output.summary, sm.output.parity, sm.output.energy_volume, sm.output.verdicts,
              min_height=sm.params.gamma_only_min_height,
              stage_test_file=sm.input.stage_test or None, log=log)
