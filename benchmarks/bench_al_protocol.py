#!/usr/bin/env python3
"""Active learning judged by what it promises: the pre-registered benchmark of issue 18.

The protocol (system, conditions, arms, test sets, metrics, statistics, hypotheses, seeds) is
written down in benchmarks/AL_PROTOCOL.md and fixed by this file's constants; the content
hashes of the test sets are printed by `--hash-test-sets` and recorded in the protocol before
any arm runs. Tuning (thresholds, ramps, pool sizes) uses seeds 100-109 only
(`--tuning`); the protocol's seeds are 0-19.

    python benchmarks/bench_al_protocol.py --hash-test-sets             # once, before the arms
    NUMBA_NUM_THREADS=1 python benchmarks/bench_al_protocol.py --seeds 0 1 2 --out OUT.jsonl
    python benchmarks/bench_al_protocol.py --analyze OUT.jsonl          # H1-H4 with p-values

Each seed runs every arm and appends one JSON line per (seed, arm) to --out; a seed already
in the file is skipped (seeds can run in batches and be appended).
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from ase import units
from ase.build import bulk, fcc100, fcc111
from ase.calculators.emt import EMT
from ase.io import write
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
from scipy import stats

from mtplib.active import ActiveSet, Thresholds, run_md, select_add
from mtplib.active.testing import emt_cells, label_emt, tiny_potential
from mtplib.training import fit

# ---- the protocol's constants (changing one after the arms ran breaks the pre-registration)
LEVEL = 8
MODE = "neighborhood"
GAMMA_SELECT, GAMMA_BREAK = 2.0, 10.0
MAX_SELECT = 10            # labels per iteration of A and B
LABEL_BUDGET = 60          # N: labels per seed for every arm (A stops earlier if converged)
MD_STEPS = 300             # steps per exploration run of A, B, B'
DT = 2.0                   # fs
REFIT_ITER = 100
FINAL_SEEDS = (0, 1, 2)    # best of 3 cold final fits (training loss)
FINAL_MAX_ITER = 400
START_CELLS = 10           # the same 10 rattled cells start every arm
PROTOCOL_SEEDS = tuple(range(20))
TUNING_SEEDS = tuple(range(100, 110))
PRODUCTION_RUNS, PRODUCTION_STEPS, PRODUCTION_EVERY = 3, 2000, 50
FAILURE_MIN_DISTANCE = 1.5  # Å
FAILURE_FORCE_FACTOR = 5.0  # a labelled production frame with force RMSE > 5x the arm's T1 level
EINSTEIN_SPRING = 3.0       # eV/Å², EMT Cu: thermal rattle sigma = sqrt(kT / spring) (arm C2)


def _cu(repeat=(2, 2, 2), scale=1.0):
    atoms = bulk("Cu", "fcc", a=3.61 * scale, cubic=True).repeat(repeat)
    return atoms


def _vacancies(n):
    atoms = _cu()
    del atoms[list(range(n))]
    return atoms


# exploration conditions S: name -> (structure builder, temperature K)
EXPLORATION = {
    "nvt600": (lambda: _cu(), 600.0),
    "nvt1200": (lambda: _cu(), 1200.0),
    "strain+3": (lambda: _cu(scale=1.03), 900.0),
    "strain-3": (lambda: _cu(scale=0.97), 900.0),
    "vacancy": (lambda: _vacancies(1), 900.0),
    "slab111": (lambda: fcc111("Cu", (2, 2, 4), vacuum=6.0, periodic=True), 600.0),
    "liquid": (lambda: _cu(), 2200.0),
}
# held out from every arm (T2b)
HELD_OUT = {
    "nvt300": (lambda: _cu(), 300.0),
    "nvt1500": (lambda: _cu(), 1500.0),
    "strain+5": (lambda: _cu(scale=1.05), 900.0),
    "strain-5": (lambda: _cu(scale=0.95), 900.0),
    "divacancy": (lambda: _vacancies(2), 900.0),
    "slab100": (lambda: fcc100("Cu", (2, 2, 4), vacuum=6.0, periodic=True), 600.0),
}


def reference_md(builder, temperature, steps, seed, every, start_rattle=0.02):
    """EMT Langevin MD of `steps`; every `every`-th frame labelled (EMT calls: steps + frames)."""
    atoms = builder()
    rng = np.random.default_rng(seed)
    atoms.positions += start_rattle * rng.normal(size=atoms.positions.shape)
    atoms.calc = EMT()
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    Stationary(atoms)
    dyn = Langevin(atoms, DT * units.fs, temperature_K=temperature, friction=0.01 / units.fs,
                   fixcm=False, rng=rng)
    frames = []
    for k, _ in enumerate(dyn.irun(steps)):
        if k and k % every == 0:
            frames.append(label_emt(atoms))
    return frames


def test_sets():
    """T1 (M4), T2a and T2b (M1): independent EMT MD, seeds no arm uses."""
    t1 = {c: reference_md(b, t, 400, 90000 + k, 20) for k, (c, (b, t)) in enumerate(EXPLORATION.items())}
    t2a = {c: reference_md(b, t, 400, 95000 + k, 20) for k, (c, (b, t)) in enumerate(EXPLORATION.items())}
    t2b = {c: reference_md(b, t, 400, 97000 + k, 20) for k, (c, (b, t)) in enumerate(HELD_OUT.items())}
    return t1, t2a, t2b


def content_hash(sets):
    buf = io.StringIO()
    for name in sorted(sets):
        write(buf, sets[name], format="extxyz")
    return hashlib.sha256(buf.getvalue().encode()).hexdigest()


def liquid_check(frames):
    """EMT Cu at the liquid condition has no fcc second shell: the RDF at a (3.61 Å) relative
    to its first peak is small. Returns that ratio."""
    from mtplib.analysis.structure import rdf
    r, g, _ = rdf(frames[len(frames) // 2:], 5.0, 100, ["Cu"])
    g = g["Cu-Cu"]
    return float(g[np.argmin(np.abs(r - 3.61))] / g.max())


# ---- fits ---------------------------------------------------------------------------------
def cold_fit(images):
    fits = []
    for s in FINAL_SEEDS:
        history = []
        pot = fit(images, tiny_potential(LEVEL), seed=s, max_iter=FINAL_MAX_ITER, log=None,
                  history=history)
        fits.append((history[-1]["loss"] if history else np.inf, s, pot))
    return min(fits, key=lambda f: (f[0], f[1]))[2]


def warm_fit(images, pot, iteration):
    return fit(images, pot, warm_start=True, seed=iteration, max_iter=REFIT_ITER, log=None)


# ---- arms ---------------------------------------------------------------------------------
def start_cells(seed):
    return emt_cells(START_CELLS, seed=seed, rattle=0.05, strain=0.01)


# The loop's configuration for arm A (and B, B'): issue 18's changes 1-5. Chosen on the
# tuning seeds 100-109 (`--tuning --variant ...`, see VARIANTS) by AL_PROTOCOL.md's rule:
# the tuning ran with trajectories=1 and all_finished; quiet_tail and 3 trajectories passed
# the rule and were switched on (amendment 2); frozen before the protocol's seeds ran.
LOOP = dict(
    continue_runs=True,        # 1: each run continues from its last accepted state
    ramp_start=300.0,          # 1: the first run of a condition ramps from 300 K ...
    ramp_steps=100,            #    ... to its temperature over 100 steps (Langevin)
    gamma_max=None,            # 2: upper trust level (None: off)
    trajectories=3,            # 3: runs per condition per iteration (velocity seeds)
    convergence="quiet_tail",  # 5: all_finished | quiet_tail
    quiet_steps=100,           # 5: quiet_tail: no candidate in the last 100 steps of each run
    weights=None,              # 4: selection weights (None: the mode's rows)
)
# the tuning arms ran around this starting loop ("chosen"); each variant switches settings
TUNING_BASE = dict(LOOP, trajectories=1, convergence="all_finished")
# the tuning arms: the old loop, the chosen loop, and each change switched (with / without)
VARIANTS = {
    "old": dict(continue_runs=False, ramp_start=None, gamma_max=None, trajectories=1,
                convergence="all_finished"),
    "chosen": {},
    "continue_off": dict(continue_runs=False),
    "continue_on": dict(continue_runs=True),
    "ramp_off": dict(ramp_start=None),
    "ramp_on": dict(ramp_start=300.0),
    "gamma_max_5": dict(gamma_max=5.0),
    "gamma_max_off": dict(gamma_max=None),
    "trajectories_1": dict(trajectories=1),
    "trajectories_3": dict(trajectories=3),
    "quiet_tail": dict(convergence="quiet_tail"),
    "all_finished": dict(convergence="all_finished"),
    "force_weights": dict(weights=dict(site_energy=1.0, energy=0.0, forces=1.0)),
}


def loop(seed, workdir, query, budget, config=None):
    """Arms A (query 'maxvol'), B ('uniform-candidates'), B' ('uniform-frames'): explore every
    condition of S with the current potential, pick at most MAX_SELECT per iteration by the
    query, label, refit warm; until the budget is spent or (A) the loop has converged."""
    cfg = dict(LOOP, **(config or {}))
    rng = np.random.default_rng(seed + 12345)
    train = start_cells(seed)
    pot = cold_fit(train)
    labels, md_steps, iterations, survived, pools, above_max = 0, 0, 0, [], [], 0
    state = {}                 # (condition, trajectory) -> last accepted Atoms
    while labels < budget:
        aset = active_set(pot, train, cfg)
        pool, frames, converged, steps_now = [], [], True, []
        for k, (name, (builder, temperature)) in enumerate(EXPLORATION.items()):
            for t in range(cfg["trajectories"]):
                tag = f"{query}_{seed}_{iterations}_{name}_{t}"
                cand = workdir / f"{tag}.extxyz"
                traj = workdir / f"{tag}.traj.extxyz"
                for path in (cand, traj):
                    path.unlink(missing_ok=True)
                previous = state.get((name, t)) if cfg["continue_runs"] else None
                atoms = previous.copy() if previous is not None else builder()
                ramp = previous is None and cfg["ramp_start"] is not None
                res = run_md(pot, atoms, active_set=aset, temperature=temperature,
                             steps=MD_STEPS, timestep=DT,
                             seed=seed * 1000 + iterations * 10 + k + 100000 * t,
                             candidates=cand, trajectory=traj, trajectory_interval=10, log=None,
                             thermalize=previous is None,
                             ramp_start=cfg["ramp_start"] if ramp else None,
                             ramp_steps=cfg["ramp_steps"] if ramp else 0,
                             engine="native",
                             thresholds=Thresholds(gamma_select=GAMMA_SELECT,
                                                   gamma_break=GAMMA_BREAK,
                                                   gamma_max=cfg["gamma_max"]))
                md_steps += res.steps
                above_max += res.above_max
                steps_now.append(res.steps)
                if res.last_accepted is not None:
                    state[(name, t)] = res.last_accepted
                if res.reason != "finished":
                    converged = False
                elif cfg["convergence"] == "quiet_tail" and \
                        res.last_selected_step > MD_STEPS - cfg["quiet_steps"]:
                    converged = False
                pool += _read(cand)
                frames += _read(traj)
        survived.append(steps_now)
        pools.append(len(pool))
        if query == "maxvol" and converged:
            break
        n = min(MAX_SELECT, budget - labels)
        if query == "maxvol":
            picked = [pool[k] for k in select_add(aset, pool, max_count=n).selected] if pool else []
        else:
            source = pool if query == "uniform-candidates" else frames
            picked = [source[k] for k in rng.choice(len(source), min(n, len(source)), replace=False)] \
                if source else []
        if not picked:
            break
        train = train + [label_emt(a) for a in picked]
        labels += len(picked)
        iterations += 1
        pot = warm_fit(train, pot, iterations)
    return train, dict(labels=labels, reference_md_steps=0, md_steps=md_steps,
                       iterations=iterations, steps_survived=survived, pool_sizes=pools,
                       above_gamma_max=above_max, converged=bool(query == "maxvol" and converged))


def active_set(pot, train, cfg):
    if cfg["weights"] is None:
        return ActiveSet.from_training(pot, train, mode=MODE)
    from mtplib.active.grade import SelectionWeights
    return ActiveSet.from_training(pot, train, mode=MODE, weights=SelectionWeights(**cfg["weights"]))


def _read(path):
    from ase.io import read
    return read(path, ":") if Path(path).exists() and Path(path).stat().st_size else []


def reference_md_arm(seed, budget):
    """C1: a budget of reference calls as short EMT MD runs over S, every frame labelled."""
    per = int(np.ceil(budget / len(EXPLORATION)))
    frames = []
    for k, (b, t) in enumerate(EXPLORATION.values()):
        frames += reference_md(b, t, per, 70000 + 100 * seed + k, 1)[:per]
    return start_cells(seed) + frames[:budget], dict(labels=budget, reference_md_steps=0)


def static_arm(seed, budget):
    """C2: thermally rattled and strained cells; sigma from each condition's temperature."""
    rng = np.random.default_rng(60000 + seed)
    frames = []
    conditions = list(EXPLORATION.values())
    for k in range(budget):
        builder, temperature = conditions[k % len(conditions)]
        atoms = builder()
        sigma = np.sqrt(units.kB * temperature / EINSTEIN_SPRING)
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + 0.01 * rng.uniform(-1, 1, (3, 3))),
                       scale_atoms=True)
        atoms.positions += sigma * rng.normal(size=atoms.positions.shape)
        frames.append(label_emt(atoms))
    return start_cells(seed) + frames, dict(labels=budget, reference_md_steps=0)


def oracle_arm(seed, budget):
    """D: uniform from long EMT MD over S; its true cost counts every MD step."""
    per = int(np.ceil(budget / len(EXPLORATION)))
    steps = 20 * per
    frames = []
    for k, (b, t) in enumerate(EXPLORATION.values()):
        frames += reference_md(b, t, steps, 80000 + 100 * seed + k, 20)[:per]
    return start_cells(seed) + frames[:budget], dict(labels=budget,
                                                     reference_md_steps=steps * len(EXPLORATION))


# ---- metrics ------------------------------------------------------------------------------
def errors(pot, images):
    res = [pot.evaluate(a) for a in images]
    df = np.concatenate([np.linalg.norm(r["forces"] - a.get_forces(), axis=1)
                         for r, a in zip(res, images)])
    dfc = np.concatenate([(r["forces"] - a.get_forces()).ravel() for r, a in zip(res, images)])
    de = np.array([(r["energy"] - a.get_potential_energy()) / len(a) for r, a in zip(res, images)])
    conf_f = np.array([np.sqrt(np.mean((r["forces"] - a.get_forces()) ** 2))
                       for r, a in zip(res, images)])
    return df, dfc, de, conf_f, res


def auc(score, positive):
    pos, neg = score[positive], score[~positive]
    if not len(pos) or not len(neg):
        return float("nan")
    return float(((pos[:, None] > neg[None, :]).sum()
                  + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (len(pos) * len(neg)))


def score_arm(pot, train, t1, t2a, t2b, seed, workdir, production_runs=PRODUCTION_RUNS):
    out = {}
    held_out = {**t2a, **t2b}
    test = [a for f in held_out.values() for a in f]
    all_df, _, _, conf2, res2 = errors(pot, test)      # T2a + T2b evaluated once
    ends = np.cumsum([sum(len(a) for a in f) for f in held_out.values()])
    atom_df = dict(zip(held_out, np.split(all_df, ends[:-1])))
    out["M1_p99_atom_force_error"] = float(np.percentile(all_df, 99))
    out["M1_max_atom_force_error"] = float(all_df.max())
    out["M1_per_condition"] = {c: float(np.percentile(v, 99)) for c, v in atom_df.items()}
    t1_all = [a for f in t1.values() for a in f]
    _, dfc, de, conf_f, res = errors(pot, t1_all)
    out["M4_force_rmse"] = float(np.sqrt(np.mean(dfc ** 2)))
    out["M4_energy_rmse"] = float(np.sqrt(np.mean(de ** 2)))
    out["M4_energy_rmse_offset_free"] = float(np.std(de))
    out["M4_energy_mean_signed"] = float(np.mean(de))
    # M6: detection on T2a + T2b (configuration level)
    aset = ActiveSet.from_training(pot, train, mode=MODE)
    gamma = np.array(aset.grade_many(test))
    out["M6_spearman_atom"] = atom_spearman(aset, test)
    bad = conf2 > 2 * np.median(conf_f)
    out["M6_spearman_config"] = float(stats.spearmanr(gamma, conf2)[0])
    out["M6_auc_gamma"] = auc(gamma, bad)
    out["M6_auc_max_force"] = auc(np.array([np.abs(r["forces"]).max() for r in res2]), bad)
    out["M6_auc_energy"] = auc(np.array([r["energy"] / len(a) for r, a in zip(res2, test)]), bad)
    # M2/M3: production MD with no gamma stop over S and T2b
    level = out["M4_force_rmse"]
    runs = failures = 0
    own = []
    for k, (name, (builder, temperature)) in enumerate({**EXPLORATION, **HELD_OUT}.items()):
        for r in range(production_runs):
            runs += 1
            atoms = builder()
            traj = workdir / f"production_{seed}_{name}_{r}.extxyz"
            traj.unlink(missing_ok=True)
            res = run_md(pot, atoms, temperature=temperature, steps=PRODUCTION_STEPS, timestep=DT,
                         seed=50000 + 1000 * seed + 10 * k + r, log=None, trajectory=traj,
                         engine="native",       # ASE's Langevin arithmetic, bit-identical
                         trajectory_interval=PRODUCTION_EVERY,
                         thresholds=Thresholds(gamma_select=1e30, gamma_break=1e31,
                                               min_distance=FAILURE_MIN_DISTANCE))
            failed = res.reason != "finished"        # a blow-up, a close contact, NaN
            frames = [label_emt(a) for a in _read(traj)[1:]]
            for frame in frames:
                rmse = float(np.sqrt(np.mean((pot.evaluate(frame)["forces"]
                                              - frame.get_forces()) ** 2)))
                own.append(rmse)
                failed |= rmse > FAILURE_FORCE_FACTOR * level
            failures += failed
    out["M2_survival"] = 1.0 - failures / runs
    out["M3_own_trajectory_force_rmse"] = float(np.sqrt(np.mean(np.square(own))))
    return out


def atom_spearman(aset, images):
    """Spearman rho between per-atom gamma (neighbourhood mode) and per-atom |dF|."""
    g, d = [], []
    for a in images:
        res = aset.evaluate(a)
        g.append(res["gamma_atoms"])
        d.append(np.linalg.norm(res["forces"] - a.get_forces(), axis=1))
    return float(stats.spearmanr(np.concatenate(g), np.concatenate(d))[0])


def run_tuning(seed, variant, workdir, t1, t2a, t2b):
    """A tuning arm: arm A with one loop variant, scored as the protocol scores A but with
    one production run per condition (the tuning seeds only)."""
    t0 = time.process_time()
    train, cost = loop(seed, workdir, "maxvol", LABEL_BUDGET, dict(TUNING_BASE, **VARIANTS[variant]))
    pot = cold_fit(train)
    row = dict(seed=seed, arm="A", variant=variant, training_set_size=len(train), M5=cost,
               level=LEVEL, **score_arm(pot, train, t1, t2a, t2b, seed, workdir, production_runs=1))
    row["cpu_s"] = round(time.process_time() - t0, 1)
    return row


# ---- the benchmark ------------------------------------------------------------------------
ARMS = ("A", "B", "Bprime", "C1", "C2", "D")


def run_seed(seed, workdir, t1, t2a, t2b):
    """Every arm of one seed, scored; one row per arm."""
    rows = []
    train_a, cost_a = loop(seed, workdir, "maxvol", LABEL_BUDGET)
    budget = cost_a["labels"] or LABEL_BUDGET
    arms = {"A": (train_a, cost_a)}
    arms["B"] = loop(seed, workdir, "uniform-candidates", budget)
    arms["Bprime"] = loop(seed, workdir, "uniform-frames", budget)
    arms["C1"] = reference_md_arm(seed, budget)
    arms["C2"] = static_arm(seed, budget)
    arms["D"] = oracle_arm(seed, budget)
    for arm in ARMS:
        train, cost = arms[arm]
        t0 = time.process_time()
        pot = cold_fit(train)
        row = dict(seed=seed, arm=arm, training_set_size=len(train), M5=cost, level=LEVEL,
                   **score_arm(pot, train, t1, t2a, t2b, seed, workdir))
        row["cpu_s"] = round(time.process_time() - t0, 1)
        rows.append(row)
    return rows


def holm(pvalues):
    order = np.argsort(pvalues)
    m = len(pvalues)
    adjusted = np.empty(m)
    running = 0.0
    for rank, k in enumerate(order):
        running = max(running, (m - rank) * pvalues[k])
        adjusted[k] = min(1.0, running)
    return adjusted


def paired(rows, metric, a, b, lower_is_better=True):
    """Per-seed log-ratios a/b, a one-sided Wilcoxon test (a better), the bootstrap 95 %
    interval of the median ratio."""
    by = {(r["seed"], r["arm"]): r for r in rows}
    seeds = sorted({r["seed"] for r in rows if (r["seed"], a) in by and (r["seed"], b) in by})
    logs = np.array([np.log(by[(s, a)][metric] / by[(s, b)][metric]) for s in seeds])
    if not lower_is_better:
        logs = -logs
    p = float(stats.wilcoxon(logs, alternative="less").pvalue) if len(logs) > 1 else float("nan")
    rng = np.random.default_rng(0)
    boots = [np.median(rng.choice(logs, len(logs))) for _ in range(5000)] if len(logs) else [np.nan]
    lo, hi = np.exp(np.percentile(boots, [2.5, 97.5]))
    return dict(n=len(seeds), median_ratio=float(np.exp(np.median(logs))) if len(logs) else None,
                ci95=[float(lo), float(hi)], p=p)


def analyze(path):
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    h1 = {b: paired(rows, "M1_p99_atom_force_error", "A", b) for b in ("B", "Bprime")}
    for b, p in zip(h1, holm([h1[b]["p"] for b in h1])):
        h1[b]["p_holm"] = float(p)
    h2 = {c: paired(rows, "M1_p99_atom_force_error", "A", c) for c in ("C1", "C2")}
    for c, p in zip(h2, holm([h2[c]["p"] for c in h2])):
        h2[c]["p_holm"] = float(p)
    by = {(r["seed"], r["arm"]): r for r in rows}
    seeds = sorted({r["seed"] for r in rows})
    for c in ("C1", "C2"):
        diffs = [by[(s, "A")]["M2_survival"] - by[(s, c)]["M2_survival"] for s in seeds
                 if (s, c) in by and (s, "A") in by]
        wins = sum(d > 0 for d in diffs)
        n = sum(d != 0 for d in diffs)
        h2[c]["survival_difference_mean"] = float(np.mean(diffs)) if diffs else None
        h2[c]["survival_sign_test_p"] = float(stats.binomtest(wins, n, alternative="greater").pvalue) if n else None
        h2[c]["survival_informative"] = not all(by[(s, a)]["M2_survival"] == 1.0 for s in seeds
                                                 for a in ("A", c) if (s, a) in by)
    h3 = paired(rows, "M4_force_rmse", "A", "D")
    h3["non_inferior"] = h3["ci95"][1] <= 1.10
    h3["energy"] = paired(rows, "M4_energy_rmse", "A", "D")
    a_rows = [r for r in rows if r["arm"] == "A"]
    h4 = dict(median_rho=float(np.median([r["M6_spearman_config"] for r in a_rows])),
              median_rho_atom=float(np.median([r.get("M6_spearman_atom", np.nan) for r in a_rows])),
              median_auc=float(np.median([r["M6_auc_gamma"] for r in a_rows])),
              median_auc_max_force=float(np.median([r["M6_auc_max_force"] for r in a_rows])),
              median_auc_energy=float(np.median([r["M6_auc_energy"] for r in a_rows])),
              seeds_gamma_beats_baselines=int(sum(r["M6_auc_gamma"] > max(r["M6_auc_max_force"],
                                                                          r["M6_auc_energy"])
                                                  for r in a_rows)), seeds=len(a_rows))
    # the verdicts, as pre-registered (AL_PROTOCOL.md)
    h1["pass"] = all(h1[b]["p_holm"] < 0.05 and h1[b]["median_ratio"] < 1 for b in ("B", "Bprime"))
    for c in ("C1", "C2"):
        h2[c]["survival_pass"] = (h2[c]["survival_informative"]
                                  and h2[c]["survival_difference_mean"] >= 0.10
                                  and h2[c]["survival_sign_test_p"] is not None
                                  and h2[c]["survival_sign_test_p"] < 0.05)
    h2["pass"] = all(h2[c]["p_holm"] < 0.05 and h2[c]["survival_pass"] for c in ("C1", "C2"))
    h3["pass"] = bool(h3["non_inferior"])
    h4["pass"] = bool(h4["median_rho"] >= 0.6 and h4["median_auc"] >= 0.8
                      and h4["seeds_gamma_beats_baselines"] >= 0.75 * h4["seeds"])
    result = {"H1": h1, "H2": h2, "H3": h3, "H4": h4}
    print(json.dumps(result, indent=2))
    print(markdown(rows, result))
    return result


def markdown(rows, h):
    """The RESULTS.md table: per arm medians, then H1-H4."""
    arms = [a for a in ARMS if any(r["arm"] == a for r in rows)]
    med = lambda a, key: float(np.median([r[key] for r in rows if r["arm"] == a]))
    lines = ["| arm | seeds | M1 p99 |ΔF| (eV/Å) | M1 max | M2 survival (mean) | M3 own-trajectory F RMSE "
             "| M4 F RMSE (eV/Å) | M4 E RMSE (meV/atom) | M5 labels (mean) | M5 reference MD steps |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for a in arms:
        mine = [r for r in rows if r["arm"] == a]
        lines.append(f"| {a} | {len(mine)} | {med(a, 'M1_p99_atom_force_error'):.3f} | "
                     f"{med(a, 'M1_max_atom_force_error'):.3f} | "
                     f"{np.mean([r['M2_survival'] for r in mine]):.3f} | "
                     f"{med(a, 'M3_own_trajectory_force_rmse'):.4f} | {med(a, 'M4_force_rmse'):.4f} | "
                     f"{1000 * med(a, 'M4_energy_rmse'):.2f} | "
                     f"{np.mean([r['M5']['labels'] for r in mine]):.1f} | "
                     f"{np.mean([r['M5']['reference_md_steps'] for r in mine]):.0f} |")
    ci = lambda d: f"{d['median_ratio']:.3f} [{d['ci95'][0]:.3f}, {d['ci95'][1]:.3f}]"
    lines += ["", "| hypothesis | comparison | median ratio [95 % CI] | p (Holm) | verdict |",
              "|---|---|---|---|---|"]
    for b in ("B", "Bprime"):
        lines.append(f"| H1 | M1 A/{b} | {ci(h['H1'][b])} | {h['H1'][b]['p']:.3g} "
                     f"({h['H1'][b]['p_holm']:.3g}) | {'pass' if h['H1']['pass'] else 'fail'} |")
    for c in ("C1", "C2"):
        d = h["H2"][c]
        surv = (f"survival A-{c} {d['survival_difference_mean']:+.3f}, sign test p "
                f"{d['survival_sign_test_p']:.3g}" if d["survival_informative"]
                else "survival uninformative (all 100 %)")
        lines.append(f"| H2 | M1 A/{c}; {surv} | {ci(d)} | {d['p']:.3g} ({d['p_holm']:.3g}) | "
                     f"{'pass' if h['H2']['pass'] else 'fail'} |")
    lines.append(f"| H3 | M4 force RMSE A/D (energy {ci(h['H3']['energy'])}) | {ci(h['H3'])} | "
                 f"upper limit ≤ 1.10 | {'pass' if h['H3']['pass'] else 'fail'} |")
    h4 = h["H4"]
    lines.append(f"| H4 | ρ config {h4['median_rho']:.2f} (atom {h4['median_rho_atom']:.2f}), AUC γ "
                 f"{h4['median_auc']:.2f} (max force {h4['median_auc_max_force']:.2f}, energy "
                 f"{h4['median_auc_energy']:.2f}), γ best in {h4['seeds_gamma_beats_baselines']}"
                 f"/{h4['seeds']} seeds | | ≥ 0.6, ≥ 0.8, ≥ 15/20 | {'pass' if h4['pass'] else 'fail'} |")
    return "\n".join(lines)


def analyze_tuning(paths):
    """The tuning arms against the chosen loop, paired by seed: median M1 ratio, survival,
    labels, converged runs, pool size."""
    rows = [json.loads(line) for p in paths for line in Path(p).read_text().splitlines() if line.strip()]
    variants = sorted({r["variant"] for r in rows}, key=lambda v: (v != "chosen", v))
    print("| variant | seeds | M1 p99 |dF| (eV/Å) median | M1 ratio to chosen (median, 95 % CI) "
          "| M4 force RMSE | M2 survival | M6 ρ config / atom | AUC γ | labels | converged | "
          "pool per iteration | above γ_max |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for v in variants:
        mine = [r for r in rows if r["variant"] == v]
        ratio = paired([dict(r, arm=r["variant"]) for r in rows if r["variant"] in (v, "chosen")],
                       "M1_p99_atom_force_error", v, "chosen") if v != "chosen" else None
        rtxt = (f"{ratio['median_ratio']:.3f} ({ratio['ci95'][0]:.2f}-{ratio['ci95'][1]:.2f}), "
                f"p={ratio['p']:.2g}" if ratio and ratio["n"] > 1 else "")
        med = lambda key: float(np.median([r[key] for r in mine]))
        pools = [p for r in mine for p in r["M5"]["pool_sizes"]]
        print(f"| {v} | {len(mine)} | {med('M1_p99_atom_force_error'):.3f} | {rtxt} | "
              f"{med('M4_force_rmse'):.4f} | {np.mean([r['M2_survival'] for r in mine]):.3f} | "
              f"{med('M6_spearman_config'):.2f} / {med('M6_spearman_atom'):.2f} | "
              f"{med('M6_auc_gamma'):.2f} | {np.mean([r['M5']['labels'] for r in mine]):.1f} | "
              f"{sum(r['M5']['converged'] for r in mine)}/{len(mine)} | "
              f"{np.median(pools):.0f} | {sum(r['M5']['above_gamma_max'] for r in mine)} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=list(PROTOCOL_SEEDS))
    ap.add_argument("--tuning", action="store_true", help="the tuning seeds 100-109 instead")
    ap.add_argument("--out", default="benchmarks/out/al_protocol.jsonl")
    ap.add_argument("--hash-test-sets", action="store_true")
    ap.add_argument("--analyze", metavar="JSONL")
    ap.add_argument("--analyze-tuning", metavar="JSONL", nargs="+")
    ap.add_argument("--workdir", default="benchmarks/out/al_protocol")
    ap.add_argument("--variant", choices=sorted(VARIANTS),
                    help="a tuning arm (with --tuning): arm A with this loop variant")
    args = ap.parse_args()
    if args.variant and not args.tuning:
        ap.error("--variant runs on the tuning seeds only: add --tuning")
    if args.analyze:
        return analyze(args.analyze)
    if args.analyze_tuning:
        return analyze_tuning(args.analyze_tuning)
    warnings.simplefilter("ignore")
    t1, t2a, t2b = test_sets()
    if args.hash_test_sets:
        print(json.dumps({"T1": content_hash(t1), "T2a": content_hash(t2a),
                          "T2b": content_hash(t2b), "frames": [sum(map(len, s.values()))
                                                               for s in (t1, t2a, t2b)],
                          "liquid_rdf_ratio_at_a": liquid_check(t1["liquid"])}, indent=2))
        return 0
    seeds = [s for s in args.seeds if s in TUNING_SEEDS] or list(TUNING_SEEDS) if args.tuning \
        else args.seeds
    if not args.tuning and set(seeds) & set(TUNING_SEEDS):
        ap.error("the tuning seeds 100-109 run with --tuning only")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {(r["seed"], r.get("variant")) for r in map(json.loads, out.read_text().splitlines())} \
        if out.exists() else set()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        if (seed, args.variant) in done:
            print(f"seed {seed}: already in {out}", file=sys.stderr)
            continue
        t0 = time.perf_counter()
        rows = [run_tuning(seed, args.variant, workdir, t1, t2a, t2b)] if args.variant \
            else run_seed(seed, workdir, t1, t2a, t2b)
        with open(out, "a") as fh:
            for row in rows:
                fh.write(json.dumps(row) + "\n")
        print(f"seed {seed}: {len(rows)} arms in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
