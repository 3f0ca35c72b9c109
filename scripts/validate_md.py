"""Stage 5 (rule validate_md): MD of one validation scenario with the MTP or the reference,
through the one MD driver (mtplib.active.run_md).

The reference runs as labelling runs it (reference.retries, reference.timeout); when it still
fails, the trajectory so far is kept and its last frame records the failure (info
'md_failure'), which the comparison and the summary report: a failing reference never
fails the workflow."""
from pathlib import Path

from mtpflow.logs import every_nth, tee_log
from mtpflow.settings import ReferenceSettings, ValidationRun, build

from mtplib.active import run_md
from mtplib.calculator import MTPCalculator
from mtplib.labeling import ReferenceFailed, RetryingCalculator, append_frame
from mtplib.structures import build_phase

FRAMES = 50     # snapshots written per trajectory

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
    out = Path(sm.output.trajectory)
    tmp = out.with_name(out.name + ".tmp")
    tmp.unlink(missing_ok=True)
    try:
        result = run_md(None, atoms, calculator=calc, ensemble=run.ensemble,
                        temperature=run.temperature, steps=run.steps, timestep=run.timestep,
                        seed=run.seed, trajectory=tmp, trajectory_interval=max(1, run.steps // FRAMES),
                        progress_interval=max(1, run.steps // 10), scenario=run.name, log=log)
        log(f"{run.name} ({sm.wildcards.engine}): {result.steps} of {run.steps} steps, "
            f"{result.reason}, {len(atoms)} atoms, final T {atoms.get_temperature():.0f} K")
    except ReferenceFailed as err:
        failed = atoms.copy()
        failed.info.update(md_failure=str(err), md_failed_attempts=len(calc.failures))
        append_frame(tmp, failed)
        log(f"{run.name} (reference): MD stopped, {err}; recorded in the validation summary")
    tmp.replace(out)
