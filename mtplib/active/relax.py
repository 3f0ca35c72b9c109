"""Learning-on-the-fly relaxation of positions and cell (MLIP-2's `relax` with selection).

ASE FIRE or BFGS on `ase.filters.FrechetCellFilter` (positions and cell) or on the atoms
alone; the extrapolation grade is checked as in `mtplib.active.md` with the same thresholds.
`relax_pool` relaxes a pool of candidates (Novikov et al. 2021, sec. 6): each relaxation
converges, stops at an extrapolative configuration (gamma >= gamma_break), which it returns
for selection, runs out of steps, or fails; `relax_with_reference` relaxes the same way with
any ASE calculator (the direct route) and counts its calls.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import units
from ase.calculators.calculator import Calculator, all_changes
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS, FIRE

from .md import ActiveCalculator, Thresholds, Watcher

OPTIMIZERS = ("fire", "bfgs")
# run_relax's reasons -> the status of a relaxation in a pool
STATUS = {"converged": "converged", "extrapolation": "stopped", "finished": "not-converged",
          "blow-up": "failed"}


def make_optimizer(atoms, optimizer="bfgs", relax_cell=True, pressure=0.0):
    """An ASE optimizer on `atoms` (with FrechetCellFilter for a periodic cell)."""
    if optimizer.lower() not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; use one of {OPTIMIZERS}")
    target = atoms
    if relax_cell and atoms.pbc.all():
        target = FrechetCellFilter(atoms, scalar_pressure=pressure * units.GPa)
    return (FIRE if optimizer.lower() == "fire" else BFGS)(target, logfile=None)


def run_relax(potential, atoms, *, active_set=None, committee=None, optimizer="fire", fmax=0.01,
              steps=1000, relax_cell=True, pressure=0.0, thresholds=None, candidates=None,
              trajectory=None, trajectory_interval=10, progress_interval=50, scenario="relax",
              log=print):
    """Relax `atoms` in place; returns a `RunResult` (reason "converged" when fmax is reached)."""
    log = log or (lambda *a, **k: None)
    thresholds = thresholds or Thresholds()
    if active_set is not None:
        potential = active_set.potential
        active_set.check_potential()
    potential.types_of(atoms, where=scenario)
    opt = make_optimizer(atoms, optimizer, relax_cell, pressure)
    calc = ActiveCalculator(potential, active_set, committee)
    atoms.calc = calc
    watcher = Watcher(calc, thresholds, candidates, scenario, log, trajectory,
                      trajectory_interval, progress_interval)
    calc.grade_next = watcher.grading
    reason, message, step = _optimize(opt, fmax, steps, lambda step: watcher.check(atoms, step))
    return watcher.result(step, reason, message, log)


def _optimize(opt, fmax, steps, check):
    """Run the ASE optimizer `opt` to fmax; `check(step)` may stop it with (reason, message).
    Returns (reason, message, steps taken): reason "converged", "finished" (out of steps),
    "blow-up" (a non-finite or invalid result), or check's."""
    reason, message, step = "finished", f"{steps} steps without reaching fmax = {fmax} eV/Å", 0
    try:
        for converged in opt.irun(fmax=fmax, steps=steps):
            step = opt.nsteps
            stop = check(step)
            if stop:
                reason, message = stop
                break
            if converged:
                reason, message = "converged", f"step {step}: converged to fmax = {fmax} eV/Å"
                break
    except (FloatingPointError, OverflowError, ValueError) as exc:
        reason, message = "blow-up", f"step {step}: {exc}"
    return reason, message, step


@dataclass
class Relaxation:
    """One relaxation of a pool: status converged | stopped | not-converged | failed.

    atoms: the relaxed structure, or for `stopped` the extrapolative configuration at which
    it stopped (the candidate for selection); energy: its energy (eV) from the potential or
    reference that relaxed it; calls: energy/force evaluations spent."""

    name: str
    status: str
    steps: int
    energy: float
    max_gamma: float
    message: str
    atoms: object
    calls: int = 0

    def to_dict(self):
        return dict(name=self.name, status=self.status, steps=self.steps, energy=self.energy,
                    max_gamma=self.max_gamma, calls=self.calls, message=self.message)


def _final(atoms, name, status, steps, message, calls, max_gamma=float("nan")):
    out = atoms.copy()
    energy = float("nan")
    if status != "failed":
        energy = float(atoms.get_potential_energy())
    out.calc = None
    out.info.update(status=status, relaxed_energy=energy, relax_steps=steps)
    return Relaxation(name=name, status=status, steps=steps, energy=energy, max_gamma=max_gamma,
                      message=message, atoms=out, calls=calls)


def relax_pool(potential, pool, *, active_set=None, thresholds=None, optimizer="bfgs", fmax=0.01,
               steps=200, relax_cell=True, pressure=0.0, log=None):
    """Relax every structure of `pool` (unchanged; copies are relaxed) with the potential,
    gamma checked every `thresholds.interval` steps; a list of `Relaxation`, pool order."""
    out = []
    quiet = (lambda *a, **k: None)
    for k, start in enumerate(pool):
        atoms = start.copy()
        atoms.calc = None
        name = str(start.info.get("pool_id", f"pool[{k}]"))
        res = run_relax(potential, atoms, active_set=active_set, optimizer=optimizer, fmax=fmax,
                        steps=steps, relax_cell=relax_cell, pressure=pressure,
                        thresholds=thresholds, scenario=name, progress_interval=10 ** 9,
                        log=quiet)
        calls = atoms.calc.evaluations
        out.append(_final(atoms, name, STATUS[res.reason], res.steps, res.message, calls,
                          res.max_gamma))
        if log and (k + 1) % 100 == 0:
            log(f"relaxed {k + 1}/{len(pool)}")
    return out


class CountingCalculator(Calculator):
    """Wraps an ASE calculator and counts its calculations (energy, forces, stress at once)."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, calc):
        super().__init__()
        self.calc = calc
        self.calls = 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        want = ["energy", "forces"] + (["stress"] if self.atoms.pbc.all() else [])
        self.calc.calculate(self.atoms, want, system_changes)
        self.calls += 1
        self.results = {k: np.copy(v) for k, v in self.calc.results.items()}
        self.results.setdefault("free_energy", self.results["energy"])


def relax_with_reference(atoms, calc, *, optimizer="bfgs", fmax=0.01, steps=200, relax_cell=True,
                         pressure=0.0, name="structure"):
    """Relax a copy of `atoms` with an ASE calculator (the direct route); a `Relaxation` whose
    `calls` counts the reference calculations."""
    atoms = atoms.copy()
    counting = CountingCalculator(calc)
    atoms.calc = counting
    opt = make_optimizer(atoms, optimizer, relax_cell, pressure)

    def finite(step):
        if not np.isfinite(counting.results.get("energy", np.nan)):
            return "blow-up", f"step {step}: non-finite energy"
        return None

    reason, message, step = _optimize(opt, fmax, steps, finite)
    return _final(atoms, name, STATUS[reason], step, message, counting.calls)


def relax_pool_with_reference(pool, calculator_factory, **kwargs):
    """`relax_with_reference` for every structure of `pool`, a fresh calculator each."""
    return [relax_with_reference(a, calculator_factory(), name=str(a.info.get("pool_id", f"pool[{k}]")),
                                 **kwargs) for k, a in enumerate(pool)]


def relaxation_frames(relaxations):
    """The relaxed (or stopped) structures of `relaxations` as Atoms with info name, status,
    relaxed_energy (eV; ASE's extxyz reader would move an 'energy' key to a calculator),
    steps and calls: what the pool's relaxed file holds."""
    frames = []
    for r in relaxations:
        atoms = r.atoms.copy()
        atoms.calc = None
        atoms.info.update(name=r.name, status=r.status, relaxed_energy=r.energy,
                          steps=r.steps, calls=r.calls)
        frames.append(atoms)
    return frames
