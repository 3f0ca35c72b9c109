#!/usr/bin/env python3
"""Train MTPs on the mlearn DFT sets (Zuo et al. 2020) and compare test MAEs with the paper's.

Per element: level (Li 16, Ni/Cu/Mo 20, Si/Ge 24), min_dist and radial_basis_size of the
published MTP, and its max_dist unless `--max-dist` sets the cutoff (a hyperparameter like the
weights: compare cutoffs by their CV scores with --skip-test), trained on train.extxyz only.
Hyperparameters (stress weight x seed) are chosen by k-fold cross-validation on train.extxyz
(short fits: --cv-iter); then one full fit (--max-iter) with the chosen ones is evaluated once
on test.extxyz.
`--radial-fraction f` optimises the radial coefficients on a seeded fraction f of the
configurations (then one linear solve on all of them), which is what makes the level-20/24
fits affordable on a few cores.

    python benchmarks/bench_mlearn.py --elements Li Mo Si [--max-iter 100] [--cv-iter 10]
    NUMBA_NUM_THREADS=1 python benchmarks/bench_mlearn.py --elements Si Mo --profile 20

`--profile N` only times the parts of one training iteration (design rows, normal equations
with the solve, loss with the radial gradient) on the first N train configurations.

`--linear-energy-scales ... [--linear-stress-weights ...] [--linear-ridges ...]` then chooses
the weights and ridge of the final linear solve by --linear-folds-fold CV at the fitted
radial coefficients (`mtplib.training.crossval`: one design pass for the whole grid);
`--criterion max` scores a CV point by the worse of its two ratios to the published MAEs.
`--reference published-cv` divides by the same k-fold CV errors of the published MTP's radial
functions with their linear part refit at PUBLISHED_WEIGHTS, instead of by the published test
MAEs: CV errors compared with CV errors. (On Si the published recipe's CV errors are
E 2.57 meV/atom, F 0.0487 eV/Å against its test MAEs 2.31 / 0.056, so ratios to the test MAEs
favour energy-heavy weights, which cost test force error.)
`--force-weight` sets the force weight of the fits (energy weight 1).

Runs behind the figures in issue #3 (2 shared cores; CV and final fits were run as separate
invocations, the final one with the CV-chosen values as a one-point grid):
    Li  CV: --stress-weights 1e-3 --seeds 0 1 --cv-iter 15 --radial-fraction 0.5
        fit: --seeds 1 --max-iter 70 --radial-fraction 0.5 --out-dir L
        linear CV: --seeds 1 --load L --linear-energy-scales 1 3 10
    Mo  CV: --stress-weights 1e-4 1e-6 --seeds 0 --cv-iter 10 --radial-fraction 0.3
        fit: --stress-weights 1e-6 --max-iter 50 --radial-fraction 0.3
    Si  fit: --stress-weights 1e-3 --seeds 0 --max-iter 40 --radial-fraction 0.1 --out-dir S
        (no CV), then --warm-start S --max-iter 25 --radial-fraction 0.3 --out-dir S2
Session 2 (LIN = --linear-energy-scales 1 2 3 5 10 20 30 --linear-ridges 1e-12 1e-10 1e-8):
    Si  --stress-weights 1e-3 --seeds 0 --warm-start S2 --radial-fraction 1 --max-iter 45
        --skip-test --out-dir S3, then --load S3 LIN --linear-stress-weights 1e-3 1e-4 0
    Li  --stress-weights 1e-3 --seeds 1 --warm-start L --radial-fraction 1 --max-iter 60
        LIN --linear-stress-weights 1e-3 1e-4 0 --skip-test --out-dir L2; L2 (CV score 0.919)
        chosen over L (--load L, same LIN: 0.970); then --load L2 with the same LIN for test
    Ni, Cu  --stress-weights 1e-6 --seeds 0 --radial-fraction 0.5 --max-iter 60
        LIN --linear-stress-weights 1e-4 1e-6 0   (no CV of the radial stage)
Session 3:
    Si  --stress-weights 1e-3 --seeds 0 --warm-start S3 --radial-fraction 0.5 --max-iter 20
        --skip-test --out-dir S4, then --load S4 LIN --linear-stress-weights 1e-3 1e-4 0
        --skip-test: best linear CV score 0.9362 against 0.9323 for S3, so S3 was kept
        (the subset stage lowered the loss on its half, 1.0960e-2 -> 1.0822e-2, and raised
        the full-set loss, 1.2739e-2 -> 1.2752e-2)
Session 5 (Ge: Si's protocol, stress weight 1e-3 and seed 0 taken from Si without a CV):
    Ge  --stress-weights 1e-3 --seeds 0 --max-iter 40 --radial-fraction 0.1 --out-dir G1;
        --warm-start G1 --max-iter 25 --radial-fraction 0.3 --out-dir G2; --warm-start G2
        --max-iter 45 --radial-fraction 1 --out-dir G3 (all --skip-test); then
        --load G3 LIN --linear-stress-weights 1e-3 1e-4 0
Session 6 (a Levenberg-Marquardt radial stage on the full set from the earlier radial
coefficients; each run reads test.extxyz at its end, and is adopted only where its linear CV
score beats the earlier potential's):
    Si  --stress-weights 1e-3 --seeds 0 --warm-start S3 --radial-optimizer lm --max-iter 16
        LIN --linear-stress-weights 1e-3 1e-4 0   (CV score 0.9283 against S3's 0.9323)
    Si  a new start, all stages LM (--stress-weights 1e-3 --seeds 1 --radial-optimizer lm):
        --radial-fraction 0.1 --max-iter 30 --skip-test --out-dir T1; --warm-start T1
        --radial-fraction 0.3 --max-iter 20 --skip-test --out-dir T2; --warm-start T2
        --radial-fraction 1 --max-iter 15 LIN --linear-stress-weights 1e-3 1e-4 0
        (CV score 0.9017 against 0.9283: adopted); the same with --seeds 2: CV score
        0.9123, not adopted
    Ni  --stress-weights 1e-6 --seeds 0 --warm-start N --radial-optimizer lm --max-iter 15
        LIN --linear-stress-weights 1e-4 1e-6 0   (CV score 0.8930 against 0.8964)
    Ge  --stress-weights 1e-3 --seeds 0 --warm-start G3 --radial-optimizer lm --max-iter 15
        LIN --linear-stress-weights 1e-3 1e-4 0   (CV score 1.2457 against 1.2234: not adopted)
    Cu  --stress-weights 1e-6 --seeds 0 --warm-start C --radial-optimizer lm --max-iter 15
        LIN --linear-stress-weights 1e-4 1e-6 0   (CV score 0.8714 against 0.8918; LM stopped
        at its 11th iteration, no damped step lowering the loss)
Session 7 (CV against the published recipe's CV):
    Si  --stress-weights 1e-3 --seeds 1 --force-weight 0.03 --warm-start T3 (the adopted
        session-6 Si) --radial-optimizer lm --max-iter 15 LIN --linear-stress-weights 1e-3 1e-4 0
        (CV score 0.9027 against 0.9017: not adopted)
    every element, every earlier candidate's radial functions: --load DIR --reference
        published-cv --skip-test --linear-energy-scales 0.5 0.7 1 1.5 2 3 5
        --linear-stress-weights 1e-3 1e-4 1e-6 0 --linear-ridges 1e-12 1e-10 1e-8; then the
        candidate with the lowest score once more without --skip-test. Scores (lowest
        first where there were several): Li 0.9569, Mo 1.0080, Ni 0.9982 (session 6's),
        Cu 0.9943 (session 6's), Ge 0.9984 (session 6's LM run), Si 0.9996 (session 6's seed
        2; seed 1 1.0034, the force-weighted run 1.0000); test MAE E / F: Li 0.379 / 0.00962,
        Mo 2.301 / 0.08818, Ni 0.450 / 0.01391, Cu 0.367 / 0.00686, Ge 1.898 / 0.04642,
        Si 2.330 / 0.05563
    Si  two more new starts, session 6's all-LM stages with --seeds 3 and 4 (NUMBA_NUM_THREADS=1
        each, in parallel; 0.1 / 0.3 / 1 of the configurations for 30 / 20 / 15 iterations):
        full-set loss 1.2514e-2 and 1.2549e-2, scores 1.0054 and 1.0009 (--skip-test): not
        adopted
Session 8 (the cutoff as a CV hyperparameter; LIN7 = the session-7 linear grid with
--reference published-cv; every run --skip-test until the one adopted):
    Si  stage 1 of session 6's all-LM protocol (--seeds 1, --radial-fraction 0.1, --max-iter 30)
        at --max-dist 5.0, 5.3 and 5.6, then LIN7: scores 1.0167, 1.0140, 1.0175 against 1.0570
        for the same stage at the published 4.7 (--load of session 6's stage 1); 5.3 then took
        stages 2 and 3 (--warm-start; 0.3 / 1 of the configurations, 20 / 15 iterations;
        full-set loss 1.1907e-2, against 1.2514e-2 the lowest at 4.7): score 0.9684 against
        the adopted 0.9996, so adopted; --load of it with LIN7, test MAE E 1.916 meV/atom,
        F 0.05389 eV/Å (published 2.31 / 0.056), chosen weights (0.5, 0.01, 1e-4), ridge 1e-10
    Ge  the same stage 1 at --max-dist 5.1 (published), 5.6 and 6.0: scores 1.0367, 1.0495,
        1.0027; 6.0 then took stages 2 and 3 (full-set loss 8.914e-3 against 9.686e-3 for the
        adopted session-6 Ge): score 0.9588 against 0.9984, so adopted; test MAE E 1.780 meV/atom,
        F 0.04434 eV/Å (published 1.79 / 0.0465), chosen weights (0.5, 0.01, 0), ridge 1e-10
"""
import argparse
import itertools
import json
import time
import warnings
from pathlib import Path

import numpy as np
from ase.io import read

from mtplib.kernels.training import batch_design
from mtplib.potential import MTPotential
from mtplib.training import fit
from mtplib.training.crossval import linear_cross_validation
from mtplib.training.data import prepare
from mtplib.training.loss import _k, loss_terms, normal_equations, pack
from mtplib.training.optimize import initial_radial_coeffs, solve_linear

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mlearn"
LEVELS = {"Li": 16, "Ni": 20, "Cu": 20, "Mo": 20, "Si": 24, "Ge": 24}
PUBLISHED = {  # test MAE of the paper's MTPs: energy meV/atom, force eV/Å (data/README.md)
    "Ni": (0.48, 0.0140), "Cu": (0.41, 0.0069), "Li": (0.49, 0.0101),
    "Mo": (2.94, 0.0901), "Si": (2.31, 0.0560), "Ge": (1.79, 0.0465)}
# MLIP's energy and force weights with no stress: of (1, 0.01, w_s) for w_s in 0, 1e-4, 1e-3,
# the least-squares solve at w_s = 0 on train.extxyz with the published radial functions comes
# closest to each published MTP's predictions (all six elements; session 7)
PUBLISHED_WEIGHTS = (1.0, 0.01, 0.0)


def maes(pot, images):
    res = pot.evaluate_many(images)
    de = np.array([(r["energy"] - a.get_potential_energy()) / len(a) for r, a in zip(res, images)])
    df = np.concatenate([(r["forces"] - a.get_forces()).ravel() for r, a in zip(res, images)])
    return 1000 * float(np.abs(de).mean()), float(np.abs(df).mean())


def cross_validate(train, init, grid, folds, fit_kw, force_weight=0.01, split_seed=0):
    """Mean held-out (energy MAE meV/atom, force MAE eV/Å) per (stress weight, seed)."""
    order = np.random.default_rng(split_seed).permutation(len(train))
    parts = np.array_split(order, folds)
    scores = {}
    for w_s, seed in grid:
        vals = []
        for k in range(folds):
            val = [train[i] for i in parts[k]]
            fit_set = [train[i] for j in range(folds) if j != k for i in sorted(parts[j])]
            pot = fit(fit_set, init, weights=(1.0, force_weight, w_s), seed=seed, log=None,
                      **fit_kw)
            vals.append(maes(pot, val))
        scores[(w_s, seed)] = tuple(np.mean(vals, axis=0))
        print(f"  CV w_s={w_s:g} seed={seed}: E {scores[(w_s, seed)][0]:.3f} meV/atom, "
              f"F {scores[(w_s, seed)][1]:.4f} eV/Å", flush=True)
    return scores


def score(cv, reference, criterion):
    """One number per CV result (lower is better), relative to reference (E, F) errors (the
    published test MAEs, or --reference published-cv): 'max' (the worse of the two ratios:
    the target is both) or 'sum' (their sum)."""
    (e, f), (pe, pf) = cv, reference
    return max(e / pe, f / pf) if criterion == "max" else e / pe + f / pf


def profile_iteration(train, init, repeats=3):
    """Median CPU-s of the parts of one VarPro evaluation on `train`, at seeded random radial
    coefficients: the design kernel alone, the normal equations (design, X^T W X and the
    linear solve) and the loss with its radial gradient (residuals from the kept design)."""
    pot = init.copy()
    pot.radial_coeffs = initial_radial_coeffs(pot, 0)
    pot.species_coeffs = np.zeros(pot.species_count)
    pot.moment_coeffs = np.zeros(pot.alpha_scalar_moments)
    batches = pack(prepare(train, pot), pot.species_count + pot.alpha_scalar_moments)
    a = pot.kernel_arrays()

    def design():
        for bt in batches:
            batch_design(bt.cfg_atoms, bt.rows(True)[0], bt.types, bt.offsets, bt.nbr, bt.vec,
                         *_k(pot), a["n_moments"], True)

    designs = []

    def normal():
        designs.clear()
        A, b, _ = normal_equations(pot, batches, keep=designs)
        theta = solve_linear(A, b)
        pot.species_coeffs = theta[:pot.species_count]
        pot.moment_coeffs = theta[pot.species_count:]

    def gradient():
        loss_terms(pot, batches, radial_grad=True, designs=designs)

    out = {}
    for name, run in (("design", design), ("normal equations + solve", normal),
                      ("loss + radial gradient", gradient)):
        run()                                   # compile outside the timings
        times = []
        for _ in range(repeats):
            c0 = time.process_time()
            run()
            times.append(time.process_time() - c0)
        out[name] = float(np.median(times))
    return out, sum(len(b.types) for b in batches)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--elements", nargs="+", default=["Li", "Mo", "Si"])
    ap.add_argument("--max-iter", type=int, default=100)
    ap.add_argument("--cv-iter", type=int, default=10)
    ap.add_argument("--folds", type=int, default=2)
    ap.add_argument("--stress-weights", nargs="+", type=float, default=[1e-3, 1e-5])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--force-weight", type=float, default=0.01,
                    help="force weight of the fits (energy weight 1); default MLIP's 0.01")
    ap.add_argument("--radial-fraction", type=float, default=1.0)
    ap.add_argument("--max-dist", type=float, default=None,
                    help="cutoff radius (Å) of a new fit (default: the published MTP's); a "
                         "hyperparameter to compare by --skip-test CV scores")
    ap.add_argument("--cv-radial-fraction", type=float, default=None,
                    help="radial fraction of the CV fits (default: --radial-fraction)")
    ap.add_argument("--ridge", type=float, default=1e-10)
    ap.add_argument("--radial-optimizer", choices=["lbfgs", "lm"], default="lbfgs")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--linear-energy-scales", nargs="+", type=float, default=[],
                    help="then choose the weights of the final linear solve by k-fold CV at "
                         "the fitted radial coefficients: energy-weight multipliers,")
    ap.add_argument("--linear-stress-weights", nargs="+", type=float, default=None,
                    help="stress weights (default: the one of the fit)")
    ap.add_argument("--linear-ridges", nargs="+", type=float, default=None,
                    help="and ridges (default: --ridge) of the final linear solve")
    ap.add_argument("--linear-folds", type=int, default=5)
    ap.add_argument("--criterion", choices=["max", "sum"], default="max",
                    help="CV score relative to the reference E and F MAE: the worse ratio "
                         "(max) or the sum of both")
    ap.add_argument("--reference", choices=["published-test", "published-cv"],
                    default="published-test",
                    help="what the linear CV errors (--linear-energy-scales) are divided by: "
                         "the published test MAEs, "
                         "or the same k-fold CV errors of the published MTP's radial functions "
                         f"with its linear part refit at weights {PUBLISHED_WEIGHTS}")
    ap.add_argument("--load", default=None,
                    help="directory with <El>.mtp from an earlier run: skip the fit")
    ap.add_argument("--warm-start", default=None,
                    help="directory with <El>.mtp from an earlier run: continue from its "
                         "radial coefficients")
    ap.add_argument("--verbose", action="store_true", help="progress lines of the final fit")
    ap.add_argument("--out-dir", default=None, help="write <El>.mtp and <El>.json here")
    ap.add_argument("--skip-test", action="store_true",
                    help="do not read test.extxyz (intermediate fits, e.g. a radial stage)")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="only time the parts of one training iteration on the first N train "
                         "configurations (CPU-s per call, median of 3) and exit")
    args = ap.parse_args()
    if args.reference == "published-cv" and not args.linear_energy_scales:
        ap.error("--reference published-cv scores the linear CV: give --linear-energy-scales")
    if args.max_dist and (args.warm_start or args.load):
        ap.error("--max-dist sets the cutoff of a new fit; --warm-start and --load keep the "
                 "cutoff of the potential they read")
    warnings.simplefilter("ignore")
    rows = []
    for el in args.elements:
        d = Path(args.data) / el
        if not (d / "train.extxyz").exists():
            print(f"{el}: no data under {d}; skipped")
            continue
        train = read(d / "train.extxyz", ":")
        ref = MTPotential.load(d / "published.mtp")
        init = MTPotential.from_level(LEVELS[el], [el], ref.min_dist,
                                      args.max_dist or ref.max_dist, ref.radial_basis_size)
        if args.warm_start:
            init = MTPotential.load(Path(args.warm_start) / f"{el}.mtp")
        if args.profile:
            parts, n_atoms = profile_iteration(train[:args.profile], init)
            print(f"{el} level {LEVELS[el]}: {args.profile} configurations ({n_atoms} atoms), "
                  f"CPU-s per call: " + ", ".join(f"{k} {v:.3f}" for k, v in parts.items()),
                  flush=True)
            continue
        t0, c0 = time.perf_counter(), time.process_time()
        grid = list(itertools.product(args.stress_weights, args.seeds))
        pe, pf = PUBLISHED[el]
        if len(grid) > 1:
            cv_frac = args.cv_radial_fraction or args.radial_fraction
            scores = cross_validate(train, init, grid, args.folds,
                                    dict(max_iter=args.cv_iter, radial_fraction=cv_frac,
                                         ridge=args.ridge), args.force_weight)
            best = min(scores, key=lambda k: score(scores[k], (pe, pf), args.criterion))
        else:
            scores, best = {}, grid[0]
        cv_wall, cv_cpu = time.perf_counter() - t0, time.process_time() - c0
        weights = (1.0, args.force_weight, best[0])
        if args.load:
            pot = MTPotential.load(Path(args.load) / f"{el}.mtp")
        else:
            pot = fit(train, init, weights=weights, seed=best[1], max_iter=args.max_iter,
                      radial_fraction=args.radial_fraction, ridge=args.ridge,
                      radial_optimizer=args.radial_optimizer,
                      log=(lambda m: print(m, flush=True)) if args.verbose else None)
        scale, w_lin, ridge, lin, best_score = 1.0, weights, args.ridge, {}, None
        reference = (pe, pf)                  # what the linear CV errors are divided by
        if args.linear_energy_scales:
            grid_lin = [(m * weights[0], weights[1], w_s)
                        for m in args.linear_energy_scales
                        for w_s in (args.linear_stress_weights or [weights[2]])]
            l0, lc0 = time.perf_counter(), time.process_time()
            if args.reference == "published-cv":
                # CV against CV: the published recipe scored on the same folds
                key = (PUBLISHED_WEIGHTS, args.ridge)
                reference = linear_cross_validation(train, ref, [PUBLISHED_WEIGHTS],
                                                    [args.ridge], folds=args.linear_folds)[key]
                print(f"  reference: the published radial functions, linear CV at weights "
                      f"{PUBLISHED_WEIGHTS}: E {reference[0]:.3f} meV/atom, "
                      f"F {reference[1]:.4f} eV/Å", flush=True)
            lin = linear_cross_validation(train, pot, grid_lin, args.linear_ridges or [args.ridge],
                                          folds=args.linear_folds)
            lin_scores = {k: score(v, reference, args.criterion) for k, v in lin.items()}
            for (w, r), (le, lf) in lin.items():
                print(f"  linear CV weights {w[0]:g} {w[1]:g} {w[2]:g} ridge {r:g}: "
                      f"E {le:.3f} meV/atom, F {lf:.4f} eV/Å, "
                      f"score {lin_scores[(w, r)]:.4f}", flush=True)
            w_lin, ridge = min(lin_scores, key=lin_scores.get)
            scale = w_lin[0] / weights[0]
            print(f"  linear CV ({args.linear_folds} folds, {len(lin)} points): "
                  f"{time.perf_counter() - l0:.0f} s wall / {time.process_time() - lc0:.0f} "
                  f"CPU-s; chose weights {w_lin}, ridge {ridge:g}", flush=True)
            best_score = lin_scores[(w_lin, ridge)]
            print(f"  CV score of the choice: {best_score:.4f}", flush=True)
            pot = fit(train, pot, weights=w_lin, optimize_radial=False, warm_start=True,
                      ridge=ridge, log=None)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if args.skip_test:
            test, e, f = [], float("nan"), float("nan")
        else:
            test = read(d / "test.extxyz", ":")    # read only now: nothing above sees it
            e, f = maes(pot, test)
        print(f"{el}: level {LEVELS[el]} ({pot.alpha_scalar_moments} basis functions), cutoff "
              f"{pot.max_dist}, {len(train)} train / {len(test)} test; chose w_s={best[0]:g}, "
              f"seed={best[1]}, energy weight x{scale:g}, final linear weights {w_lin}, "
              f"ridge {ridge:g}; CV {cv_wall:.0f} s wall / "
              f"{cv_cpu:.0f} CPU-s")
        print(f"{el}: test MAE E {e:.2f} meV/atom (published {pe}), F {f:.4f} eV/Å "
              f"(published {pf}); wall {wall:.0f} s, CPU {cpu:.0f} s", flush=True)
        rows.append((el, e, pe, f, pf))
        if args.out_dir:
            out = Path(args.out_dir)
            out.mkdir(parents=True, exist_ok=True)
            pot.save(out / f"{el}.mtp")
            (out / f"{el}.json").write_text(json.dumps(dict(
                element=el, level=LEVELS[el], max_dist=pot.max_dist,
                test_mae_energy_meV_atom=e, test_mae_force=f,
                published=[pe, pf], reference=args.reference,
                reference_errors=list(reference), cv_score=best_score,
                stress_weight=best[0], seed=best[1],
                energy_weight_scale=scale, linear_weights=w_lin, linear_ridge=ridge,
                linear_cv={f"{w[0]:g},{w[1]:g},{w[2]:g},{r:g}": v for (w, r), v in lin.items()},
                args=vars(args),
                cv={f"{k[0]:g},{k[1]}": v for k, v in scores.items()},
                wall_s=wall, cpu_s=cpu), indent=1))
    if not rows:
        return
    print("\nel  E MAE (ours / paper) meV/atom   F MAE (ours / paper) eV/Å")
    for el, e, pe, f, pf in rows:
        print(f"{el:3s} {e:8.2f} / {pe:<8.2f}            {f:8.4f} / {pf:.4f}")


if __name__ == "__main__":
    main()
