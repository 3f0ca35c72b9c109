"""Scenario grids and MD schedules (Novikov et al. 2021, sec. 5.2.2).

A grid scenario gives lists of temperatures, lattice scalings and seeds; `expand_grid` turns
it into one MD run per combination, each with a unique name (a Snakemake wildcard). A
schedule is a list of `Segment`s (steps, target temperature, cell scaling), e.g. melt at high
T and large cell, then cool and compress to the target, then hold: `run_schedule` runs them
one after the other on the same atoms. With gamma_select == gamma_break a run stops at the
first configuration it selects, so every trajectory contributes at most one configuration.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .md import RunResult, run_md


@dataclass(frozen=True)
class GridPoint:
    """One MD run of a grid: its name, temperature (K), lattice scaling and seed."""

    name: str
    temperature: float
    scaling: float = 1.0
    seed: int = 0


@dataclass(frozen=True)
class Segment:
    """Part of a schedule: `steps` MD steps at `temperature` (K) in the start cell times
    `scaling` (positions scaled with it)."""

    steps: int
    temperature: float
    scaling: float = 1.0


def _label(value):
    return f"{value:g}".replace(".", "p").replace("-", "m")


def expand_grid(name, temperatures, scalings=(1.0,), seeds=(0,)):
    """GridPoints of every (temperature, scaling, seed), in that nesting order, named
    `{name}_{T}K_x{scaling}_s{seed}` (the parts of a single-valued list left out)."""
    lists = {"temperatures": list(temperatures), "scalings": list(scalings), "seeds": list(seeds)}
    for key, values in lists.items():
        if not values:
            raise ValueError(f"scenario {name!r}: '{key}' is empty")
    for t in lists["temperatures"]:
        if not t > 0:
            raise ValueError(f"scenario {name!r}: temperature {t!r} must be positive")
    for s in lists["scalings"]:
        if not s > 0:
            raise ValueError(f"scenario {name!r}: lattice scaling {s!r} must be positive")
    points, seen = [], set()
    for t in lists["temperatures"]:
        for s in lists["scalings"]:
            for seed in lists["seeds"]:
                parts = [name, f"{_label(t)}K"]
                if len(lists["scalings"]) > 1:
                    parts.append(f"x{_label(s)}")
                if len(lists["seeds"]) > 1:
                    parts.append(f"s{int(seed)}")
                run = "_".join(parts)
                if run in seen:
                    raise ValueError(f"scenario {name!r}: run {run!r} occurs twice (repeated "
                                     "values in temperatures, scalings or seeds)")
                seen.add(run)
                points.append(GridPoint(run, float(t), float(s), int(seed)))
    return points


def parse_schedule(entries, where="schedule"):
    """Segments from a list of mappings with keys steps, temperature and optional scaling."""
    segments = []
    for k, entry in enumerate(entries):
        unknown = set(entry) - {"steps", "temperature", "scaling"}
        if unknown:
            raise ValueError(f"{where}[{k}]: unknown key(s) {sorted(unknown)} (use steps, "
                             "temperature, scaling)")
        for key in ("steps", "temperature"):
            if key not in entry:
                raise ValueError(f"{where}[{k}]: missing '{key}'")
        seg = Segment(int(entry["steps"]), float(entry["temperature"]),
                      float(entry.get("scaling", 1.0)))
        if seg.steps < 0 or not seg.temperature > 0 or not seg.scaling > 0:
            raise ValueError(f"{where}[{k}]: need steps >= 0, temperature > 0, scaling > 0; "
                             f"got {entry}")
        segments.append(seg)
    if not segments:
        raise ValueError(f"{where}: the schedule has no segments")
    return segments


def scaled_start(atoms, scaling):
    """A copy of `atoms` with the cell (and positions) scaled by `scaling`."""
    out = atoms.copy()
    out.set_cell(atoms.cell.array * scaling, scale_atoms=True)
    return out


def segment_seed(seed, k):
    """The seed of segment k of a schedule run with `seed` (independent streams)."""
    return int(np.random.SeedSequence([int(seed), int(k)]).generate_state(1)[0])


@dataclass
class ScheduleResult:
    result: RunResult                               # the whole run: steps summed, reason of the last
    segments: list = field(default_factory=list)    # RunResult per segment that ran


def run_schedule(potential, atoms, segments, *, seed=0, log=print, **md_kwargs):
    """`run_md` over the segments in order, on the same atoms (modified in place). Each
    segment scales the start cell by its `scaling` (positions scaled with it) and starts from
    Maxwell-Boltzmann velocities at its temperature (`run_md`, seed `segment_seed(seed, k)`).
    Stops at the first segment that does not finish (extrapolation, blow-up). The whole run's
    `RunResult` counts steps, candidates and graded frames over the segments that ran (steps
    of the whole run, e.g. `last_selected_step`), with the last accepted state of any (its
    info 'segment' says which).

    `md_kwargs` go to `run_md` (active_set, thresholds, candidates, timestep, ensemble, ...)."""
    start_cell = atoms.cell.array.copy()
    per_segment = []
    history = []
    steps = 0
    last_selected, last_accepted = -1, None
    for k, seg in enumerate(segments):
        atoms.set_cell(start_cell * seg.scaling, scale_atoms=True)
        res = run_md(potential, atoms, temperature=seg.temperature, steps=seg.steps,
                     seed=segment_seed(seed, k), log=log, **md_kwargs)
        per_segment.append(res)
        history += [(steps + s, g) for s, g in res.history]
        if res.last_selected_step >= 0:
            last_selected = steps + res.last_selected_step
        if res.last_accepted is not None:
            last_accepted = res.last_accepted
            last_accepted.info["segment"] = k        # where a continued run would resume
        steps += res.steps
        if res.reason != "finished":
            break
    last = per_segment[-1]
    total = RunResult(steps=steps, reason=last.reason,
                      message=f"segment {len(per_segment)} of {len(segments)}: {last.message}",
                      max_gamma=max(r.max_gamma for r in per_segment),
                      max_force_std=max(r.max_force_std for r in per_segment),
                      candidates=sum(r.candidates for r in per_segment),
                      gradings=sum(r.gradings for r in per_segment), history=history,
                      above_max=sum(r.above_max for r in per_segment),
                      graded=sum(r.graded for r in per_segment),
                      graded_below_select=sum(r.graded_below_select for r in per_segment),
                      last_selected_step=last_selected, last_accepted=last_accepted)
    return ScheduleResult(result=total, segments=per_segment)
