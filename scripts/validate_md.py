"""Stage 5 (rule validate_md): MD of one validation scenario with the MTP or the reference,
through the one MD driver (mtplib.active.run_md), after the scenario's schedule if any.

The reference runs as labelling runs it (reference.retries, reference.timeout); when it still
fails, the trajectory so far is kept and its last frame records the failure (info
'md_failure'), which the comparison and the summary report: a failing reference never
fails the workflow."""
from mtpflow.logs import every_nth, tee_log
from mtpflow.settings import ReferenceSettings, ValidationRun, build
from mtpflow.validation import validation_md

from mtplib.calculator import MTPCalculator
from mtplib.labeling import RetryingCalculator
from mtplib.structures import build_phase

sm = snakemake  # noqa: F821
run = build(ValidationRun, sm.params.run)
with tee_log(sm.log[0], terminal=False,
             progress=every_nth("step", max(1, run.steps // 4))) as log:
    atoms = build_phase(run.phase, sm.params.phases[run.phase]).repeat(tuple(run.supercell))
    if sm.wildcards.engine == "mtp":
        calc = MTPCalculator(sm.input.potential, species=list(sm.params.elements))
    else:
        reference = build(ReferenceSettings, sm.params.reference)
        calc = RetryingCalculator(reference.calculator_factory(
            symbols=atoms.get_chemical_symbols()), retries=reference.retries,
            timeout=reference.timeout, log=log)
    validation_md(run, atoms, calc, sm.output.trajectory, sm.wildcards.engine, log=log)
