"""Learning-on-the-fly molecular dynamics on ASE integrators (Novikov et al. 2021, sec. 5.1).

The potential drives the dynamics; the extrapolation grade gamma (and/or the committee's
force spread) is checked every `interval` steps and whenever the largest force exceeds
`max_forces_check`. gamma > gamma_select appends the configuration to the candidates file;
gamma >= gamma_break stops the run ("extrapolation"). The run also stops on a blow-up:
atoms closer than `min_distance` or a non-finite energy. On grading steps the energy,
forces and gamma come from one pass of the kernels (`ActiveSet.evaluate`), bit-for-bit the
forces of plain evaluation.

`run_md(..., engine="native")` steps the same ASE integrator's arithmetic on arrays
(`mtplib.md`) instead of through `Atoms` and the calculator: the same trajectory, grades,
candidates and result, bit for bit, at a fraction of the per-step Python cost (NVE and
Langevin NVT with the MTP, without a committee).
"""
from __future__ import annotations

import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import ase.io
import numpy as np
from ase import units
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes

from .criteria import default_criteria
from .grade import evaluate_with_gradients

ENSEMBLES = ("nve", "nvt", "langevin", "nvt-langevin", "nvt-nhc", "nvt_nh", "nhc", "npt",
             "npt_cell")
ENGINES = ("ase", "native")
NATIVE_ENSEMBLES = ("nve", "nvt", "langevin", "nvt-langevin")


class ActiveCalculator(Calculator):
    """MTP energies and forces that also grade the configuration when `grade_next` is set.

    results gain ``gamma`` (and ``gamma_atoms`` in neighbourhood mode) when graded,
    ``force_std`` (max over atoms) when a committee is given, and ``min_distance``."""

    implemented_properties = ["energy", "free_energy", "forces", "stress", "energies"]

    def __init__(self, potential, active_set=None, committee=None, **kwargs):
        super().__init__(**kwargs)
        self.potential = potential
        self.active_set = active_set
        self.committee = committee
        self.grade_next = False
        self.evaluations = 0
        self.gradings = 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        grading = self.grade_next and self.active_set is not None
        if grading:
            res = self.active_set.evaluate(self.atoms)
            self.gradings += 1
        else:
            res = evaluate_with_gradients(self.potential, self.atoms, gradients=False)
        self.evaluations += 1
        self.results["energy"] = self.results["free_energy"] = res["energy"]
        self.results["forces"] = res["forces"]
        self.results["energies"] = res["energies"]
        self.results["min_distance"] = res["min_distance"]
        if grading:
            self.results["gamma"] = res["gamma"]
            if "gamma_atoms" in res:
                self.results["gamma_atoms"] = res["gamma_atoms"]
        if self.grade_next and self.committee is not None:
            others = [p.evaluate(self.atoms)["forces"] for p in self.committee.potentials[1:]]
            sigma, worst = self.committee.deviation(self.atoms, forces=[res["forces"]] + others)
            self.results["force_std"] = worst
            self.results["force_std_atoms"] = sigma
        if res["stress"] is not None:
            self.results["stress"] = res["stress"]
        elif "stress" in properties:
            raise PropertyNotImplementedError("stress needs a 3-D periodic cell")

    def graded_results(self, atoms):
        """The results with gamma for the current `atoms`, grading now if needed."""
        fresh = not self.check_state(atoms) and self.results
        have = ("gamma" in self.results or self.active_set is None) and \
               ("force_std" in self.results or self.committee is None)
        if not (fresh and have):
            self.grade_next = True
            self.results = {}
            atoms.get_forces()
        return self.results


@dataclass
class Thresholds:
    """Selection and break thresholds for gamma (and the committee's force spread, eV/Å),
    more criteria (`mtplib.active.criteria`), and when to check."""

    gamma_select: float = 2.0
    gamma_break: float = 10.0
    std_select: float | None = None
    std_break: float | None = None
    interval: int = 1
    max_forces_check: float | None = None
    min_distance: float = 0.5
    gamma_max: float | None = None   # upper trust level: above it, not a candidate (None: off)
    criteria: tuple = ()             # more Criterion objects, checked after gamma and spread

    def all_criteria(self):
        return default_criteria(self.gamma_select, self.gamma_break, self.std_select,
                                self.std_break, self.gamma_max) + list(self.criteria)


@dataclass
class RunResult:
    steps: int
    reason: str                  # finished | extrapolation | blow-up | converged
    message: str
    max_gamma: float = 0.0
    max_force_std: float = 0.0
    candidates: int = 0
    gradings: int = 0
    history: list = field(default_factory=list)   # (step, gamma or nan)
    above_max: int = 0           # graded frames above gamma_max (seen, not candidates)
    graded: int = 0              # graded steps
    graded_below_select: int = 0  # graded steps that no criterion selected
    last_selected_step: int = -1  # the last step with gamma (or another criterion) above select
    last_accepted: object = None  # Atoms (with momenta) of the last graded step not selected
    stopped_by: str | None = None  # name of the criterion that stopped the run, if one did


class Watcher:
    """Checks a run after every step: grade, collect candidates, decide to stop."""

    def __init__(self, calc, thresholds, candidates=None, scenario="md", log=print,
                 trajectory=None, trajectory_interval=100, progress_interval=100):
        self.calc = calc
        self.t = thresholds
        self.candidates = Path(candidates) if candidates else None
        self.trajectory = Path(trajectory) if trajectory else None
        self.trajectory_interval = max(1, int(trajectory_interval))
        self.progress_interval = max(1, int(progress_interval))
        self.scenario = scenario
        self.log = log or (lambda *a, **k: None)
        self.criteria = thresholds.all_criteria()
        self.every_step = [c for c in self.criteria if c.every_step]   # also between gradings
        self.n_candidates = 0
        self.n_above_max = 0
        self.graded = 0
        self.graded_below_select = 0
        self.last_selected_step = -1
        self.last_accepted = None
        self.stopped_by = None
        self.maxima = {c.name: 0.0 for c in self.criteria}
        self.history = []
        self.last_gamma = float("nan")
        self.sync_atoms = None     # array engines: brings `atoms` up to date before it is read

    @property
    def max_gamma(self):
        return self.maxima["gamma"]

    @property
    def max_std(self):
        return self.maxima["force_std"]

    def result(self, step, reason, message, log):
        """Say why the run stopped and return its RunResult."""
        log(f"{self.scenario}: stopped after {step} steps: {message}; {self.n_candidates} "
            f"candidates, max gamma {self.max_gamma:.4g}")
        return RunResult(steps=step, reason=reason, message=message, max_gamma=self.max_gamma,
                         max_force_std=self.max_std, candidates=self.n_candidates,
                         gradings=getattr(self.calc, "gradings", 0), history=self.history,
                         above_max=self.n_above_max, graded=self.graded,
                         graded_below_select=self.graded_below_select,
                         last_selected_step=self.last_selected_step,
                         last_accepted=self.last_accepted, stopped_by=self.stopped_by)

    @property
    def grading(self):
        return (getattr(self.calc, "active_set", None) is not None
                or getattr(self.calc, "committee", None) is not None or bool(self.t.criteria))

    def _current(self):
        if self.sync_atoms is not None:
            self.sync_atoms()

    def _write(self, path, atoms, arrays=None, **info):
        self._current()
        out = atoms.copy()
        out.calc = None
        out.info.update(info)
        for key in ("momenta", "masses"):
            out.arrays.pop(key, None)
        for key, value in (arrays or {}).items():
            out.arrays[key] = value
        ase.io.write(path, out, format="extxyz", append=True)

    def check(self, atoms, step, extra=""):
        """None to go on, or (reason, message) to stop."""
        calc = self.calc
        res = calc.results
        energy = res.get("energy", np.nan)
        if not np.isfinite(energy) or not np.isfinite(res.get("forces", np.nan)).all():
            return "blow-up", f"step {step}: non-finite energy or forces"
        dmin = res.get("min_distance", np.inf)
        if dmin < self.t.min_distance:
            return "blow-up", (f"step {step}: atoms {dmin:.3f} Å apart, closer than "
                               f"{self.t.min_distance} Å")
        fmax = float(np.sqrt((res["forces"] ** 2).sum(axis=1).max())) if len(atoms) else 0.0
        due = step % self.t.interval == 0 or (self.t.max_forces_check is not None
                                              and fmax > self.t.max_forces_check) \
            or any(c.selects(v) or c.breaks(v)
                   for c, v in ((c, c.value(res, atoms)) for c in self.every_step))
        stop = None
        if due and self.grading:
            res = calc.graded_results(atoms)
            self._current()                      # criteria and last_accepted read the atoms
            values = {c.name: c.value(res, atoms) for c in self.criteria}
            self.last_gamma = values["gamma"]
            self.history.append((step, values["gamma"]))
            for name, v in values.items():
                if np.isfinite(v):
                    self.maxima[name] = max(self.maxima[name], v)
            self.graded += 1
            selected = any(c.selects(values[c.name]) for c in self.criteria)
            untrusted = any(getattr(c, "untrusted", lambda v: False)(values[c.name])
                            for c in self.criteria)
            self.n_above_max += untrusted
            if selected or untrusted:
                self.last_selected_step = step
            else:
                self.graded_below_select += 1
                self.last_accepted = atoms.copy()      # positions, cell, momenta
                self.last_accepted.calc = None
            if selected and self.candidates is not None:
                info = dict(step=step, scenario=self.scenario)
                info.update({name: v for name, v in values.items() if np.isfinite(v)})
                arrays = {"gamma": res["gamma_atoms"]} if "gamma_atoms" in res else None
                self._write(self.candidates, atoms, arrays=arrays, **info)
                self.n_candidates += 1
            for c in self.criteria:
                if c.breaks(values[c.name]):
                    stop = ("extrapolation", c.break_message(step, values[c.name]))
                    self.stopped_by = c.name
                    break
        if self.grading:     # grade the next step's forces in the same pass when it is due
            calc.grade_next = (step + 1) % self.t.interval == 0
        if self.trajectory is not None and step % self.trajectory_interval == 0:
            self._current()
            self._write(self.trajectory, atoms, step=step, gamma=self.last_gamma,
                        temperature=atoms.get_temperature(), energy=energy)
        if step % self.progress_interval == 0 or stop:
            if callable(extra):
                extra = extra()
            self.log(f"{self.scenario}: step {step:7d}  gamma {self.last_gamma:9.4g}  {extra}"
                     f"E {energy:.5f} eV")
        return stop


def make_integrator(atoms, ensemble, timestep, temperature, rng, pressure=0.0, friction=0.01,
                    tdamp=100.0, pdamp=1000.0):
    """An ASE integrator. timestep, tdamp, pdamp in fs; temperature in K; pressure in GPa;
    friction in 1/fs (Langevin)."""
    dt = timestep * units.fs
    ensemble = ensemble.lower()
    if ensemble == "nve":
        from ase.md.verlet import VelocityVerlet
        return VelocityVerlet(atoms, timestep=dt)
    if ensemble in ("nvt", "langevin", "nvt-langevin"):
        from ase.md.langevin import Langevin
        return Langevin(atoms, timestep=dt, temperature_K=temperature, friction=friction / units.fs,
                        fixcm=False, rng=rng)
    if ensemble in ("nvt-nhc", "nvt_nh", "nhc"):
        from ase.md.nose_hoover_chain import NoseHooverChainNVT
        return NoseHooverChainNVT(atoms, timestep=dt, temperature_K=temperature,
                                  tdamp=tdamp * units.fs)
    if ensemble == "npt_cell":      # MTK barostat on every cell degree of freedom (triclinic)
        if not atoms.pbc.all():
            raise ValueError("NPT needs a 3-D periodic cell")
        from ase.md.nose_hoover_chain import MTKNPT
        return MTKNPT(atoms, timestep=dt, temperature_K=temperature,
                      pressure_au=pressure * units.GPa, tdamp=tdamp * units.fs,
                      pdamp=pdamp * units.fs)
    if ensemble == "npt":
        if not atoms.pbc.all():
            raise ValueError("NPT needs a 3-D periodic cell")
        try:
            from ase.md.nose_hoover_chain import IsotropicMTKNPT
        except ImportError:     # older ASE
            from ase.md.nptberendsen import NPTBerendsen
            return NPTBerendsen(atoms, timestep=dt, temperature_K=temperature,
                                pressure_au=pressure * units.GPa, taut=tdamp * units.fs,
                                taup=pdamp * units.fs, compressibility_au=1e-2 / units.GPa)
        return IsotropicMTKNPT(atoms, timestep=dt, temperature_K=temperature,
                               pressure_au=pressure * units.GPa, tdamp=tdamp * units.fs,
                               pdamp=pdamp * units.fs)
    raise ValueError(f"unknown ensemble {ensemble!r}; use one of {ENSEMBLES}")


def run_md(potential, atoms, *, active_set=None, committee=None, calculator=None, ensemble="nvt",
           temperature=300.0, steps=1000, timestep=1.0, pressure=0.0, thresholds=None,
           candidates=None, trajectory=None, trajectory_interval=100, progress_interval=100,
           seed=0, scenario="md", friction=0.01, tdamp=100.0, pdamp=1000.0,
           thermalize=True, ramp_steps=0, ramp_start=None, equilibration_steps=0,
           equilibration_friction=0.05, log=print, engine="ase"):
    """MD of `atoms` (modified in place), learning on the fly; returns a `RunResult`.

    The one MD driver of active learning and validation. With `potential` (and an active set
    and/or a committee) the configurations are graded and the run stops on extrapolation;
    with `calculator` (any ASE calculator, e.g. the reference; `potential` None) it is plain
    MD with the same integrators, blow-up checks and trajectory.
    Velocities: Maxwell-Boltzmann at `temperature` (or `ramp_start`) from a seeded rng, zero
    total momentum; with `thermalize=False` the momenta `atoms` carries are kept (a run that
    continues an earlier one). With `ramp_steps`, the thermostat's target goes linearly from
    `ramp_start` (K) to `temperature` over the first `ramp_steps` steps (Langevin only).
    With `equilibration_steps`, the run begins with that many steps of strongly damped
    Langevin dynamics (`equilibration_friction`, 1/fs) at the start temperature in the start
    cell, then goes on in `ensemble` for `steps` more: a packed amorphous box releases its
    strain energy as heat within tens of fs, which a weak thermostat lets run away
    (benchmarks/RESULTS.md, bench_xtb_melt). These steps are graded and written like the
    others and count in the run's steps.
    Every random choice (velocities, Langevin noise) comes from `seed`.

    `engine`: "ase" steps the ASE integrator through `Atoms` and the calculator; "native"
    does the same integrator's arithmetic on arrays (`mtplib.md`), with the same trajectory,
    grades, candidates and result, for the ensembles NATIVE_ENSEMBLES with the MTP and
    without a committee. Either way `atoms` ends with the last positions and momenta and
    an `ActiveCalculator` holding the last results (native: without stress)."""
    from ase.md import velocitydistribution as vd

    log = log or (lambda *a, **k: None)
    thresholds = thresholds or Thresholds()
    if engine not in ENGINES:
        raise ValueError(f"unknown MD engine {engine!r}; use one of {ENGINES}")
    if engine == "native" and (committee is not None or calculator is not None or atoms.constraints
                               or ensemble.lower() not in NATIVE_ENSEMBLES):
        raise ValueError(f"MD engine 'native' runs the ensembles {NATIVE_ENSEMBLES} with the MTP, "
                         f"without a committee or constraints; use engine='ase' for ensemble "
                         f"{ensemble!r}" + (" with a committee" if committee is not None else "")
                         + (" with another calculator" if calculator is not None else "")
                         + (" with constraints" if atoms.constraints else ""))
    if active_set is not None:
        potential = active_set.potential
        active_set.check_potential()
    if calculator is None:
        potential.types_of(atoms, where=scenario)        # unknown species: a clear error now
    rng = np.random.default_rng(seed)
    ramp = ramp_steps > 0 and ramp_start is not None
    if ramp and ensemble.lower() not in ("nvt", "langevin", "nvt-langevin"):
        raise ValueError(f"{scenario}: a temperature ramp needs the Langevin thermostat (nvt), "
                         f"not {ensemble!r}")
    if equilibration_steps < 0 or not equilibration_friction > 0:
        raise ValueError(f"{scenario}: equilibration needs steps >= 0 and friction > 0, got "
                         f"{equilibration_steps} and {equilibration_friction}")
    start_temperature = ramp_start if ramp else temperature
    if thermalize or not atoms.has("momenta"):
        if hasattr(vd, "thermalize_momenta"):          # ASE >= 3.28
            vd.thermalize_momenta(atoms, temperature_K=start_temperature, rng=rng)
        else:
            vd.MaxwellBoltzmannDistribution(atoms, temperature_K=start_temperature, rng=rng)
        vd.Stationary(atoms)
    calc = calculator if calculator is not None else ActiveCalculator(potential, active_set,
                                                                       committee)
    atoms.calc = calc
    watcher = Watcher(calc, thresholds, candidates, scenario, log, trajectory,
                      trajectory_interval, progress_interval)
    if watcher.grading:
        calc.grade_next = True              # step 0 is always checked

    def ramp_to(dyn, step):                 # the thermostat's target for the next step
        if ramp and step <= ramp_steps:
            dyn.set_temperature(temperature_K=ramp_start + (temperature - ramp_start)
                                * min(1.0, (step + 1) / ramp_steps))

    # the stages of the run: (integrator, made when the stage begins; steps; per-step hook)
    stages = []
    if equilibration_steps > 0:
        stages.append((lambda: make_integrator(atoms, "nvt", timestep, start_temperature, rng,
                                               friction=equilibration_friction),
                       int(equilibration_steps), None))
    stages.append((lambda: make_integrator(atoms, ensemble, timestep, start_temperature, rng,
                                           pressure, friction, tdamp, pdamp),
                   int(steps), ramp_to if ramp else None))
    total = sum(n for _, n, _ in stages)
    with ExitStack() as run:      # close contacts: one warning line per run, at its end
        for pot in [potential] + (list(committee.potentials[1:]) if committee is not None else []):
            if pot is not None:
                run.enter_context(pot.close_contacts(f"{scenario} (MD)"))
        if engine == "native":
            return _run_native(potential, atoms, active_set, calc, watcher, stages, log)
        reason, message = "finished", f"{total} steps finished"
        step = offset = 0
        try:
            for k, (make, n, hook) in enumerate(stages):
                dyn = make()
                stop = None
                for _ in dyn.irun(n):
                    if k > 0 and dyn.nsteps == 0:
                        continue            # the previous stage's last state, checked there
                    step = offset + dyn.nsteps
                    if hook is not None:
                        hook(dyn, dyn.nsteps)
                    stop = watcher.check(atoms, step,
                                         extra=lambda: f"T {atoms.get_temperature():7.1f} K  ")
                    if stop:
                        break
                if stop:
                    reason, message = stop
                    break
                offset += n
        except (FloatingPointError, OverflowError, ValueError) as exc:   # a blown-up search
            reason, message = "blow-up", f"step {step}: {exc}"
        return watcher.result(step, reason, message, log)


class _ArrayCalculator:
    """What `Watcher` reads of `ActiveCalculator` (results, grade_next, counters), for the
    forces of `mtplib.md.ArrayForces` at the current positions."""

    committee = None

    def __init__(self, forces_of, active_set):
        self.forces_of = forces_of
        self.active_set = active_set
        self.grade_next = False
        self.results = {}
        self.positions = None
        self.evaluations = 0
        self.gradings = 0

    def forces(self, positions):
        """ActiveCalculator.calculate on arrays: grades when grade_next is set."""
        grading = self.grade_next and self.active_set is not None
        self.results = self.forces_of(positions, grade=grading)
        self.positions = positions
        self.evaluations += 1
        self.gradings += grading
        return self.results["forces"]

    def graded_results(self, atoms):
        if "gamma" not in self.results and self.active_set is not None:
            self.grade_next = True
            self.forces(self.positions)
        return self.results


def _run_native(potential, atoms, active_set, calc, watcher, stages, log):
    """run_md's loop with `mtplib.md`'s array integrator: ASE's `irun` (forces at step 0,
    then step and check) on arrays, stage after stage (`run_md`'s (make integrator, steps,
    hook) list); `atoms` is brought up to date before a frame is written, when a stage's
    integrator is made, and at the end."""
    from ..md import ArrayForces, array_integrator, kinetic_temperature

    array_calc = _ArrayCalculator(ArrayForces(potential, atoms, active_set), active_set)
    array_calc.grade_next = calc.grade_next
    watcher.calc = array_calc
    masses = atoms.get_masses()
    state = dict(positions=atoms.get_positions(), momenta=atoms.get_momenta())

    def sync():
        atoms.set_positions(state["positions"], apply_constraint=False)
        atoms.set_momenta(state["momenta"], apply_constraint=False)

    def extra():
        return f"T {kinetic_temperature(state['momenta'], masses):7.1f} K  "

    def forces_at(positions):          # as ASE: the new positions are set, then evaluated
        state["positions"] = positions
        return array_calc.forces(positions)

    watcher.sync_atoms = sync
    total = sum(n for _, n, _ in stages)
    reason, message = "finished", f"{total} steps finished"
    step = 0
    try:
        forces = forces_at(state["positions"])
        end = 0
        for k, (make, n, hook) in enumerate(stages):
            sync()
            dyn = make()
            stepper = array_integrator(dyn)
            start, end = end, end + n
            if hook is not None:
                hook(dyn, 0)
            stop = None
            while True:
                if k == 0 or step > start:      # a stage's first state ended the last one
                    stop = watcher.check(atoms, step, extra=extra)
                if stop or step >= end:
                    break
                positions, momenta, forces = stepper.step(state["positions"], state["momenta"],
                                                          forces, forces_at)
                state.update(positions=positions, momenta=momenta)
                step += 1
                if hook is not None:
                    hook(dyn, step - start)
            if stop:
                reason, message = stop
                break
    except (FloatingPointError, OverflowError, ValueError) as exc:   # a blown-up neighbour search
        reason, message = "blow-up", f"step {step}: {exc}"
    finally:
        sync()
    # as after an ASE run: the calculator holds the results of the last positions
    calc.atoms = atoms.copy()
    calc.results = dict(array_calc.results)
    if "energy" in calc.results:
        calc.results["free_energy"] = calc.results["energy"]
    calc.evaluations, calc.gradings = array_calc.evaluations, array_calc.gradings
    return watcher.result(step, reason, message, log)


def stderr_log(msg):
    print(msg, file=sys.stderr, flush=True)
