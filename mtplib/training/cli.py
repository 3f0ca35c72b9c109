"""`mtplib train` and `mtplib scan`: argparse sub-commands for mtplib/cli.py to include.

    from mtplib.training.cli import add_parsers
    add_parsers(subparsers)          # each parser sets func=handler(args) -> exit code

Also runnable directly: ``python -m mtplib.training.cli train ...`` (handy under mpiexec).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .data import TrainingDataError, image_labels, train_test_split
from .optimize import (DEFAULT_MAX_ITER, DEFAULT_TOL, DEFAULT_WEIGHTS, RADIAL_OPTIMIZERS,
                       STOP_WINDOW, fit)
from .parallel import Reducer


def _read_images(paths, species=None):
    """Images of several files (extxyz/any ASE format, or MLIP .cfg), each labelled file[i]."""
    from ase.io import read
    images = []
    for path in paths:
        if str(path).endswith(".cfg"):
            from ..io.cfg import read_cfg
            part = read_cfg(path, species=species)
        else:
            part = read(path, ":")
        for n, atoms in enumerate(part):
            atoms.info.setdefault("source", f"{path}[{n}]")
        images.extend(part)
    return images


def _common(p):
    p.add_argument("init", nargs="?", help="initial (untrained or trained) .mtp; or use --level")
    p.add_argument("data", nargs="+", help="training data files (extxyz, .cfg, ...)")
    p.add_argument("--level", type=int, help="start from an untrained potential of this level")
    p.add_argument("--species", nargs="+", help="element of each MLIP type (default: from the data)")
    p.add_argument("--min-dist", type=float, default=2.0,
                   help="inner radius of the radial basis (Å; default %(default)s): set it just "
                        "below the data's shortest distance, see `mtplib mindist`")
    p.add_argument("--max-dist", type=float, default=5.0,
                   help="cutoff radius (Å; default %(default)s)")
    p.add_argument("--radial-basis-size", type=int, default=8,
                   help="number of Chebyshev radial basis functions (default %(default)s)")
    p.add_argument("--radial-basis-type", default="RBChebyshev",
                   choices=["RBChebyshev", "RBChebyshev_repuls"],
                   help="RBChebyshev_repuls: MLIP-2's repulsive core below --min-dist (default "
                        "%(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial radial coefficients")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the train/test split")
    p.add_argument("--test-fraction", type=float, default=0.2,
                   help="fraction of the data held out as the test set (default %(default)s)")
    p.add_argument("--weights", nargs=3, type=float, default=list(DEFAULT_WEIGHTS),
                   metavar=("E", "F", "S"), help="energy, force, stress weights (eq. 7)")
    p.add_argument("--scaling", default="vibrations",
                   choices=["vibrations", "structures", "molecules"],
                   help="weights of a configuration's terms by its number of atoms N (eq. 7):"
                        " vibrations divides energy and stress by N, structures energy and "
                        "stress by N^2 and forces by N, molecules nothing (default "
                        "%(default)s)")
    p.add_argument("--max-iter", type=int, default=DEFAULT_MAX_ITER,
                   help="cap on the optimiser iterations (default %(default)s); the fit "
                        "normally ends earlier, by --tol")
    p.add_argument("--tol", type=float, default=DEFAULT_TOL,
                   help="stop when the loss fell by less than this fraction of itself over the "
                        "last --stop-window iterations (default %(default)s: past the knee of "
                        "the loss curve); e.g. 1e-7 runs to --max-iter")
    p.add_argument("--stop-window", type=int, default=STOP_WINDOW,
                   help="iterations over which --tol is measured (default %(default)s)")
    p.add_argument("--fast", action="store_true",
                   help="no radial optimisation: random radial coefficients + one linear solve")
    p.add_argument("--energy-only-radial", action="store_true",
                   help="optimise the radial coefficients on the energy term only; the final "
                        "linear solve uses all weights")
    p.add_argument("--radial-fraction", type=float, default=1.0,
                   help="optimise the radial coefficients on this seeded fraction of the "
                        "training configurations, then solve the linear ones on all")
    p.add_argument("--radial-optimizer", choices=RADIAL_OPTIMIZERS, default="lbfgs",
                   help="L-BFGS-B, or Levenberg-Marquardt (one evaluation per radial "
                        "coefficient per iteration; fewer iterations near a minimum)")
    p.add_argument("--forces-cap", type=float, help="drop configurations with max |F| above (eV/Å)")
    p.add_argument("--valid", nargs="+", default=[], help="validation data (reported only)")


def add_parsers(subparsers):
    """Add `train` and `scan` to an argparse sub-parser collection."""
    p = subparsers.add_parser("train", help="fit an MTP (variable projection + L-BFGS or LM)")
    _common(p)
    p.add_argument("--out", required=True, help="output .mtp (errors go to the same name .json)")
    p.set_defaults(func=train_command)
    s = subparsers.add_parser("scan", help="fit several seeds; keep the best as a committee")
    _common(s)
    s.add_argument("--seeds", nargs="+", type=int, default=list(range(10)),
                   help="seeds of the initial radial coefficients (default 0 ... 9)")
    s.add_argument("--out-dir", required=True, help="folder of the seeds' .mtp/.json files")
    s.add_argument("--metric", default="test.forces.rmse",
                   help="set.quantity.statistic to rank seeds by (default test.forces.rmse)")
    s.add_argument("--committee", type=int, default=5, help="committee size")
    s.set_defaults(func=scan_command)
    return p, s


def _setup(args):
    from ..potential import MTPotential
    if args.init and not str(args.init).endswith(".mtp"):
        args.data = [args.init] + args.data     # `train --level N DATA...`: no init given
        args.init = None
    if args.init is None and args.level is None:
        raise TrainingDataError("give an initial .mtp or --level")
    images = _read_images(args.data, args.species)
    if not images:
        raise TrainingDataError(f"no configurations in {args.data}")
    if args.init and args.level is None:
        pot = MTPotential.load(args.init, species=args.species)
        if not pot.species and not args.species:
            pot.species = sorted({s for a in images for s in a.get_chemical_symbols()})
    else:
        species = args.species or sorted({s for a in images for s in a.get_chemical_symbols()})
        pot = MTPotential.from_level(args.level, species, args.min_dist, args.max_dist,
                                     args.radial_basis_size, args.radial_basis_type)
    train, test = train_test_split(images, args.test_fraction, args.split_seed)
    valid = _read_images(args.valid, args.species) if args.valid else []
    if args.tol < 0 or args.stop_window < 1:
        raise TrainingDataError(f"--tol must be >= 0 and --stop-window >= 1, got {args.tol} "
                                f"and {args.stop_window}")
    kwargs = dict(weights=tuple(args.weights), scaling=args.scaling, max_iter=args.max_iter,
                  tol=args.tol, stop_window=args.stop_window,
                  optimize_radial=not args.fast, energy_only_radial=args.energy_only_radial,
                  forces_cap=args.forces_cap, labels=image_labels(train),
                  radial_fraction=args.radial_fraction, radial_optimizer=args.radial_optimizer)
    return pot, train, test, valid, kwargs


def train_command(args):
    from ..analysis.errors import format_error_table, write_errors_json
    from .scan import error_summary
    try:
        pot, train, test, valid, kwargs = _setup(args)
        red = Reducer("auto")
        trained = fit(train, pot, seed=args.seed, comm=red.comm, log=print, **kwargs)
    except (TrainingDataError, ValueError, OSError) as exc:
        print(f"mtplib train: error: {exc}", file=sys.stderr)
        return 2
    if red.is_root:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        trained.save(out)
        errors = {name: error_summary(trained, imgs)
                  for name, imgs in (("train", train), ("test", test), ("valid", valid)) if imgs}
        print(format_error_table(errors))
        write_errors_json(out.with_suffix(".json"), errors)
        print(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


def scan_command(args):
    from .scan import scan
    try:
        pot, train, test, valid, kwargs = _setup(args)
        scan(train, pot, args.seeds, args.out_dir, test_images=test, valid_images=valid,
             metric=args.metric, committee_size=args.committee, **kwargs)
    except (TrainingDataError, ValueError, OSError) as exc:
        print(f"mtplib scan: error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="mtplib")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
