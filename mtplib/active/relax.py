"""Learning-on-the-fly relaxation of positions and cell (MLIP-2's `relax` with selection).

ASE FIRE or BFGS on `ase.filters.FrechetCellFilter` (positions and cell) or on the atoms
alone; the extrapolation grade is checked as in `mtplib.active.md` with the same thresholds.
"""
from __future__ import annotations

from .md import ActiveCalculator, Thresholds, Watcher

OPTIMIZERS = ("fire", "bfgs")


def run_relax(potential, atoms, *, active_set=None, committee=None, optimizer="fire", fmax=0.01,
              steps=1000, relax_cell=True, pressure=0.0, thresholds=None, candidates=None,
              trajectory=None, trajectory_interval=10, progress_interval=50, scenario="relax",
              log=print):
    """Relax `atoms` in place; returns a `RunResult` (reason "converged" when fmax is reached)."""
    from ase import units
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS, FIRE

    log = log or (lambda *a, **k: None)
    thresholds = thresholds or Thresholds()
    if active_set is not None:
        potential = active_set.potential
        active_set.check_potential()
    potential.types_of(atoms, where=scenario)
    if optimizer.lower() not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; use one of {OPTIMIZERS}")
    calc = ActiveCalculator(potential, active_set, committee)
    atoms.calc = calc
    watcher = Watcher(calc, thresholds, candidates, scenario, log, trajectory,
                      trajectory_interval, progress_interval)
    calc.grade_next = watcher.grading
    target = atoms
    if relax_cell and atoms.pbc.all():
        target = FrechetCellFilter(atoms, scalar_pressure=pressure * units.GPa)
    opt = (FIRE if optimizer.lower() == "fire" else BFGS)(target, logfile=None)
    reason, message = "finished", f"{steps} steps without reaching fmax = {fmax} eV/Å"
    step = 0
    try:
        for converged in opt.irun(fmax=fmax, steps=steps):
            step = opt.nsteps
            stop = watcher.check(atoms, step)
            if stop:
                reason, message = stop
                break
            if converged:
                reason, message = "converged", f"step {step}: converged to fmax = {fmax} eV/Å"
                break
    except (FloatingPointError, OverflowError, ValueError) as exc:
        reason, message = "blow-up", f"step {step}: {exc}"
    return watcher.result(step, reason, message, log)
