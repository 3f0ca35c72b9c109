"""End to end: MD -> select -> EMT labels -> refit, against uniform sampling of MD (EMT Cu).

Needs `mtplib.training.fit`; skipped with the reason when it cannot be imported.

The loop follows the AL workflow (`mtplib.workflow.active`): every iteration selects from its
MD's candidates, labels and refits warm from the previous potential, also when the MD
finished (its gamma_select < gamma < gamma_break candidates are still extrapolative), and
stops once an MD finishes with no gamma >= gamma_break. Selection is in neighbourhood mode
(one Jacobian row per atom). The two arms are then compared on equal terms: the same number
of configurations, each fitted by the same seed scan (cold start, best training loss of
FINAL_SEEDS, as the workflow's final fit), scored on an independent EMT MD trajectory.

The loop's convergence is asserted. That active learning beats uniform sampling is NOT
established: over seeds of the whole procedure the sign of the difference changes (the
numbers are in the xfail reason), so that comparison stays a non-strict xfail.
"""
import os

import ase.io
import numpy as np
import pytest
from ase.build import bulk

from mtplib.active import ActiveSet, Thresholds, run_md, select_add
from mtplib.active.testing import emt_cells, label_emt, tiny_potential

try:
    from mtplib.training import fit
except ImportError as exc:           # the trainer is written elsewhere
    fit = None
    _why = f"mtplib.training.fit not importable: {exc}"

pytestmark = pytest.mark.skipif(fit is None, reason=_why if fit is None else "")

T, STEPS, DT = 1200.0, 300, 2.0
GAMMA_SELECT, GAMMA_BREAK = 2.0, 10.0
MODE = "neighborhood"
MAX_SELECT = 10            # configurations selected per iteration
REFIT_ITER = 100           # warm refits inside the loop
FINAL_SEEDS = (0, 1, 2)    # the final fit of either arm: best training loss over these seeds


def _fit(images, seed=0, init=None, max_iter=300):
    """(potential, final training loss): cold from a level-8 MTP, or warm from `init`."""
    history = []
    pot = fit(images, init if init is not None else tiny_potential(8), seed=seed,
              max_iter=max_iter, log=None, history=history)
    return pot, (history[-1]["loss"] if history else np.inf)


def _final_fit(images):
    """The same seed scan for both arms: the lowest training loss over FINAL_SEEDS."""
    return min((_fit(images, seed=s) for s in FINAL_SEEDS), key=lambda f: f[1])[0]


def _start(seed):
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    atoms.positions += 0.02 * np.random.default_rng(seed).normal(size=atoms.positions.shape)
    return atoms


def _energy_rmse(pot, images):
    err = [(pot.evaluate(a)["energy"] - a.get_potential_energy()) / len(a) for a in images]
    return float(np.sqrt(np.mean(np.square(err))))


def _emt_md(steps, seed, every):
    from ase.calculators.emt import EMT
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    atoms = _start(seed)
    atoms.calc = EMT()
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=T, rng=rng)
    dyn = Langevin(atoms, DT * units.fs, temperature_K=T, friction=0.01 / units.fs, fixcm=False,
                   rng=rng)
    frames = []
    for k, _ in enumerate(dyn.irun(steps)):
        if k and k % every == 0:
            frames.append(label_emt(atoms))
    return frames


def active_learning(train, workdir, seed=0, max_iterations=10):
    """The loop; returns (training set, steps survived per iteration). `seed` offsets the MD
    starts and noise: active_learning(emt_cells(10, seed=s, ...), dir, seed=s) and
    compare_with_uniform(train, seed=s) give the per-seed figures of the xfail reason."""
    pot = _fit(train)[0]
    survived = []
    for it in range(max_iterations):
        aset = ActiveSet.from_training(pot, train, mode=MODE)
        cand = workdir / f"cand{it}.extxyz"
        res = run_md(pot, _start(100 + it + 1000 * seed), active_set=aset, ensemble="nvt",
                     temperature=T, steps=STEPS, timestep=DT, seed=it + 1000 * seed,
                     candidates=cand, log=None,
                     thresholds=Thresholds(gamma_select=GAMMA_SELECT, gamma_break=GAMMA_BREAK))
        finished = res.reason == "finished" and res.max_gamma < GAMMA_BREAK
        survived.append(STEPS + 1 if finished else res.steps)
        assert finished or res.reason == "extrapolation", res.message
        pool = ase.io.read(cand, ":") if cand.exists() else []
        new = [label_emt(pool[k]) for k in select_add(aset, pool, max_count=MAX_SELECT).selected] \
            if pool else []
        assert new or finished, f"iteration {it}: nothing selected from {len(pool)} candidates"
        if new:
            train = train + new
            pot = _fit(train, init=pot, max_iter=REFIT_ITER)[0]
        if finished:
            break
    return train, survived


def compare_with_uniform(train, seed=0):
    """(active RMSE, uniform RMSE) in eV/atom on an independent EMT MD trajectory, both arms
    fitted by `_final_fit` on the same number of configurations."""
    n_md = len(train) - 10
    uniform = emt_cells(10, seed=seed, rattle=0.05, strain=0.01) + \
        _emt_md(STEPS, seed=7 + 1000 * seed, every=max(1, STEPS // n_md))[:n_md]
    assert len(uniform) == len(train)
    test_set = _emt_md(400, seed=99 + 1000 * seed, every=20)
    return _energy_rmse(_final_fit(train), test_set), _energy_rmse(_final_fit(uniform), test_set)


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    """The loop from 10 rattled cells (seed 0): (training set, steps survived)."""
    return active_learning(emt_cells(10, seed=0, rattle=0.05, strain=0.01),
                           tmp_path_factory.mktemp("al"))


@pytest.mark.slow
def test_active_learning_converges(learned):
    """Steps survived before gamma_break grow; the last MD finishes with no gamma >= gamma_break."""
    train, survived = learned
    assert survived[-1] == STEPS + 1, f"the last MD did not finish: steps survived {survived}"
    assert len(survived) > 1 and survived[-1] > survived[0], survived
    assert max(survived[:-1]) <= survived[-1]
    assert len(train) > 10


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("MTP_AL_COMPARISON"), reason=(
    "six seed-scanned fits, about 4 minutes on 2 cores, for a comparison known not to be "
    "robust (see the xfail): run with MTP_AL_COMPARISON=1"))
@pytest.mark.xfail(strict=False, reason=(
    "known shortfall: not robust over seeds. Energy RMSE (meV/atom) active vs uniform, same "
    "N and the same seed-scanned fit, seeds 0/1/3/5 of this loop: 0.184/0.215, 0.237/0.187, "
    "0.132/0.136, 0.275/0.209; the fit-seed spread (0.1-0.3) exceeds the difference"))
def test_active_learning_beats_uniform_sampling(learned):
    train, survived = learned
    active_rmse, uniform_rmse = compare_with_uniform(train)
    print(f"{len(train)} configurations, steps survived {survived}: energy RMSE active "
          f"{active_rmse * 1e3:.3f} meV/atom, uniform {uniform_rmse * 1e3:.3f} meV/atom")
    assert active_rmse < uniform_rmse, (
        f"active learning ({len(train)} configurations, steps survived {survived}): energy RMSE "
        f"{active_rmse * 1e3:.3f} meV/atom, not below uniform sampling {uniform_rmse * 1e3:.3f}")
