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
  `fit` stops on its relative loss decrease (cap FIT_MAX_ITER), the lowest training loss kept.
  The fit is converged: over seeds 0-5 of this procedure the two best fit seeds reached the
  same loss to within 1 % in 9 of 12 fits (e.g. 4.301e-5 and 4.301e-5); fit seed 0 of this
  level-8 potential lands in a worse basin (loss 2.4-3x higher) in 10 of 12 fits and is
  never the best, so the best of three is what decides.
- The test set is TEST_TRAJECTORIES independent EMT MD runs at 1200 K (seeds no arm uses;
  76 frames), not one run of 19 correlated frames.

Before the fitter was fixed (L-BFGS-B's ftol was absolute for losses < 1, and a 1e-10 ridge
made the VarPro gradient wrong near convergence) every fit stopped after 40-150 iterations,
the best of three at a loss 10-16 % above the converged one (energy RMSE off by up to
0.018 meV/atom), and one test run of 19 correlated frames added its own noise: together
they hid the sign of the difference between the arms.

The loop's convergence is asserted. That active learning beats uniform sampling is NOT
established: with converged fits uniform sampling gives the lower energy RMSE in 6 of 7 seeds
of the whole procedure, and the lower largest energy error in 6 of 7 as well (per seed,
active/uniform over the 76 test frames; energies in meV/atom, forces in meV/A):

    seed  N   steps survived          energy RMSE    largest error   force RMSE
    0     34  15, 64, 192, 301        0.144/0.167    0.401/0.423     7.38/7.45
    1     33  17, 131, 301            0.251/0.193    0.586/0.474     7.43/7.45
    2     33  12, 18, 229, 15, 301    0.256/0.200    0.564/0.452     7.81/10.66
    3     32  13, 75, 301             0.175/0.163    0.663/0.500     7.89/8.00
    4     32  14, 13, 117, 301        0.185/0.176    0.692/0.571     7.89/7.55
    5     36  15, 65, 65, 301         0.205/0.165    0.489/0.421     7.29/6.98
    6     36  10, 41, 151, 301        0.179/0.178    0.512/0.435     9.06/8.12

(benchmarks/bench_al_vs_uniform.py prints these; seed 6 re-run at commit 0f5e1bf gave the
same figures to the last digit.) The difference comes from the data, not the fit.

Why, and whether another setting would change it (benchmarks/bench_al_learning_curve.py,
data seed 0, fit seed 1; training/test energy RMSE in meV/atom of the uniform arm on the
same 76 test frames):

    N        15            20            30            45            60
    level 8  0.148/0.231   0.135/0.201   0.129/0.175   0.117/0.160   0.120/0.152
    level 12 0.030/0.067                 0.035/0.058                 0.036/0.055
    level 16 0.017/0.041                 0.024/0.033                 0.025/0.032

- At level 8 the optimiser's share is negligible: at fixed data, fit seeds 1 and 2 give
  test RMSEs within 0.002 meV/atom (N = 15, 20, 45, 60), against arm gaps of 0.009-0.058 in
  six seeds (seed 6's gap, 0.002, is within that spread). At level 12 it is not: at N = 30
  fit seed 2 gives 0.031/0.052 against fit seed 1's 0.035/0.058.
- At N ~ 33, level 8 is at least half bias: its training RMSE settles at 0.12 (N = 45-60), so
  its bias floor is 0.12-0.15 against a test RMSE of 0.175 at N = 30 (47-74 % of the mean
  squared error). Levels 12 and 16 are no more variance-dominated: from N = 15 to 30 the test
  RMSE falls 24 % at level 8, 14 % at level 12 and 20 % at level 16; from 30 to 60, 13 % at
  level 8, 6 % at level 12 (less than its fit-seed spread; its test RMSE stays 1.5x its
  training RMSE) and 3 % at level 16.
  With the forces in the fit, every level here has far fewer parameters (22, 48, 117) than
  rows (97 energy and force components per configuration, about 3200 at N = 33), so the data
  pin the parameters and there is no regime in which the smaller parameter variance of a
  D-optimal design is what the energy RMSE measures. The EMT labels carry no noise either, so
  what remains above the floor is approximation error that depends on where the training data
  lie. (Levels 12 and 16 have 3-5x lower RMSEs, but one level-12 cold fit took 3-10 minutes on
  the shared 2 cores against 10-140 s at level 8: neither fits a test of 1-2 minutes.)
- What separates the arms is how closely each training set resembles the test trajectories,
  not how well it is fitted. Training/test energy RMSE at level 8: seed 0 (active wins)
  active 0.127/0.144, uniform 0.124/0.167; seed 6 (uniform wins) active 0.127/0.179,
  uniform 0.155/0.178. All four training RMSEs lie between 0.124 and 0.155; the arm whose
  test RMSE rises less above its own wins. The uniform arm samples the test distribution
  itself (EMT MD at 1200 K), which for a model with a bias floor is the best training
  distribution for the mean error; maxvol picks extreme neighbourhoods from MD runs driven by
  unfinished potentials, which on average lie further from it.
- The whole procedure at level 12 does not turn it either (bench_al_vs_uniform.py --level 12
  --seeds 0). Seed 0 (the seed that active learning wins at level 8): N = 46, steps survived
  14, 63, 121, 126, 301; training/test energy RMSE active 0.027/0.054, uniform 0.029/0.051;
  largest error 0.149/0.137; force RMSE 3.20/3.08 meV/A. That gap (0.003) is half the fit-seed
  spread at level 12 (0.006, above). It took 53 minutes of wall time at a load average of
  about 6 (the loop 14 of them), so the other seeds were not run at level 12.
- Configuration mode (one energy row per configuration, the D-optimal design for the energy
  rows; the loop of bench_al_vs_uniform.py --mode configuration) does not converge here: level
  8, seed 0, steps survived 0, 0, 6, 6, 10, 11, 13, 15, 19, 25 over its 10 iterations (32
  configurations at the end). Its active set starts from 10 configurations for 22 parameters
  (regularised); not pursued further.

So that comparison stays an opt-in, non-strict xfail.
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
    compare_with_uniform(train, seed=s) give the per-seed figures of the xfail reason."""
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
