"""End to end: MD -> select -> EMT labels -> refit, against uniform sampling of MD (EMT Cu).

Needs `mtplib.training.fit`; skipped with the reason when it cannot be imported.

The loop follows the AL workflow (`scripts/mtpflow/active.py`): it starts from the best of a
seed scan on the 10 rattled cells (stage 3); every iteration selects from its MD's
candidates, labels and refits warm from the previous potential, also when the MD finished
(its gamma_select < gamma < gamma_break candidates are still extrapolative), and stops once
an MD finishes with no gamma >= gamma_break. Selection is in neighbourhood mode (one
Jacobian row per atom).

The comparison with uniform sampling, and why it is built this way:
- Both arms have the same number of configurations and the same 10 starting cells; the
  uniform arm adds frames sampled uniformly in time from one EMT MD run under the AL MD's
  conditions (1200 K Langevin, STEPS steps of DT, from the same kind of start).
- Both are fitted by exactly the same procedure: cold fits from FINAL_SEEDS, each run until
  `fit` stops on its relative loss decrease (cap FIT_MAX_ITER), the lowest training loss kept,
  so that the fit's own spread does not decide the comparison.
- The test set is TEST_TRAJECTORIES independent EMT MD runs at T (seeds no arm uses), not one
  run of correlated frames.

The loop's convergence is asserted. That active learning beats uniform sampling is NOT
established: with converged fits uniform sampling gives the lower energy RMSE in 6 of 7
seeds of the whole procedure at level 8 and in the one seed run at level 12, and
configuration mode does not converge here. The per-seed figures, the learning curves behind
the explanation (a bias-limited model, for which the uniform arm samples the test
distribution itself) and the commands are in benchmarks/RESULTS.md (bench_al_vs_uniform.py,
bench_al_learning_curve.py); that script runs the comparison, which is not a test.
"""

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
LEVEL = 8                  # the MTP level of every fit (tiny_potential)
MODE = "neighborhood"
MAX_SELECT = 10            # configurations selected per iteration
REFIT_ITER = 100           # warm refits inside the loop
FINAL_SEEDS = (0, 1, 2)    # the final fit of either arm: best training loss over these seeds
FIT_MAX_ITER = 400         # cold fits: a cap; they stop on fit's relative loss decrease
TEST_TRAJECTORIES = 4      # independent EMT MD runs of the test set (400 steps, every 20th)


def _fit(images, seed=0, init=None, max_iter=FIT_MAX_ITER):
    """(potential, final training loss): cold from a level-LEVEL MTP, or warm from `init`."""
    history = []
    pot = fit(images, init if init is not None else tiny_potential(LEVEL), seed=seed,
              max_iter=max_iter, log=None, history=history)
    return pot, (history[-1]["loss"] if history else np.inf)


def _final_fit(images):
    """The same seed scan for both arms: (potential, loss) of the lowest training loss over
    FINAL_SEEDS."""
    return min((_fit(images, seed=s) for s in FINAL_SEEDS), key=lambda f: f[1])


def _start(seed):
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    atoms.positions += 0.02 * np.random.default_rng(seed).normal(size=atoms.positions.shape)
    return atoms


def energy_force_errors(pot, images):
    """Per-image energy errors (meV/atom) and all force-component errors (meV/A), one
    evaluation per image (for the benchmarks that score these fits)."""
    results = [pot.evaluate(a) for a in images]
    de = 1e3 * np.array([(r["energy"] - a.get_potential_energy()) / len(a)
                         for r, a in zip(results, images)])
    df = 1e3 * np.concatenate([(r["forces"] - a.get_forces()).ravel()
                               for r, a in zip(results, images)])
    return de, df


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
    compare_with_uniform(train, seed=s) give the per-seed figures of bench_al_vs_uniform.py."""
    pot = _final_fit(train)[0]        # the workflow's stage 3: a seed scan, the best loss
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
    """(active RMSE, uniform RMSE) in eV/atom on the independent EMT MD runs, both arms
    fitted by `_final_fit` on the same number of configurations."""
    test = independent_md(seed)
    return (_energy_rmse(_final_fit(train)[0], test),
            _energy_rmse(_final_fit(uniform_arm(train, seed))[0], test))


def uniform_arm(train, seed=0):
    """The same 10 starting cells plus len(train) - 10 frames sampled uniformly in time from
    one EMT MD run of STEPS steps at T (the length and conditions of one AL MD run)."""
    n_md = len(train) - 10
    uniform = emt_cells(10, seed=seed, rattle=0.05, strain=0.01) + \
        _emt_md(STEPS, seed=7 + 1000 * seed, every=max(1, STEPS // n_md))[:n_md]
    assert len(uniform) == len(train)
    return uniform


def independent_md(seed=0):
    """TEST_TRAJECTORIES independent EMT MD runs at T (400 steps, every 20th frame): seeds
    that neither arm's MD uses."""
    return [f for k in range(TEST_TRAJECTORIES)
            for f in _emt_md(400, seed=99 + 1000 * seed + 7919 * k, every=20)]


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
