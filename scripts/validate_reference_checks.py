"""Stage 5 (rule validate_reference_checks): the reference's energy-volume curves and elastic
constants of the phases, which the summary compares with the final potential's; they need no
potential, so they run beside stages 1-4."""
from mtpflow.logs import tee_log
from mtpflow.settings import ReferenceSettings, ValidationSettings, build
from mtpflow.validation import reference_crystal_checks

sm = snakemake  # noqa: F821
with tee_log(sm.log[0]) as log:
    reference_crystal_checks(build(ReferenceSettings, sm.params.reference), sm.params.phases,
                             sm.params.elements, build(ValidationSettings, sm.params.validation),
                             sm.output.checks, min_height=sm.params.gamma_only_min_height,
                             log=log)
