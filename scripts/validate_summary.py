"""Stage 5 end (rule validate_summary): summary.json, test-set parity, energy-volume curves."""
from mtpflow.logs import tee_log
from mtpflow.settings import FitSettings, ReferenceSettings, ValidationSettings, build
from mtpflow.validation import summarize

sm = snakemake  # noqa: F821
with tee_log(sm.log[0]) as log:
    summarize(list(sm.input.similarity), sm.params.names, sm.input.potential, sm.input.train,
              build(ReferenceSettings, sm.params.reference), sm.params.phases,
              sm.params.elements, build(FitSettings, sm.params.fit),
              build(ValidationSettings, sm.params.validation), sm.output.summary,
              sm.output.parity, sm.output.energy_volume, log=log)
