"""Stage 5 (rule validate_md): MD of one validation scenario with the MTP or the reference,
through the one MD driver (mtplib.active.run_md), from a phase supercell or an amorphous box.

The MTP run is graded against the final potential's active set (the grade is tracked, the
run never stopped by it). The reference runs as labelling runs it (reference.retries,
reference.timeout); when it still fails, the trajectory so far is kept and its last frame
records the failure (info 'md_failure'), which the comparison and the summary report: a
failing reference never fails the workflow."""
from mtpflow.logs import every_nth, tee_log
from mtpflow.settings import ReferenceSettings, ValidationRun, build
from mtpflow.validation import validation_md

sm = snakemake  # noqa: F821
run = build(ValidationRun, sm.params.run)
engine = sm.wildcards.engine
with tee_log(sm.log[0], terminal=False,
             progress=every_nth("step", max(1, run.steps_of(engine) // 4))) as log:
    validation_md(run, engine, sm.params.phases, sm.params.elements, sm.output.trajectory,
                  sm.output.record, reference=build(ReferenceSettings, sm.params.reference),
                  potential_file=getattr(sm.input, "potential", None),
                  state_file=getattr(sm.input, "state", None),
                  gamma_select=sm.params.gamma_select, gamma_break=sm.params.gamma_break,
                  md_engine=sm.params.md_engine, log=log)
