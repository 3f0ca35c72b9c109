"""Stage 4 end (rule al_record): record.csv, the learning curve and the label failures."""
from mtpflow.active import record
from mtpflow.logs import tee_log

sm = snakemake  # noqa: F821
with tee_log(sm.log[0]) as log:
    record(list(sm.input.summaries), sm.output.record, sm.output.curve, sm.output.failures,
           failed_files=list(sm.input.failed), log=log,
           empty_status=sm.params.empty_status)
