"""The `mtplib` command line, mirroring MLIP-2's `mlp` verbs.

    mtplib init --level 16 --species Hf O --min-dist 1.5 --max-dist 5 --radial-basis-size 8 OUT.mtp
    mtplib evaluate POT DATA OUT          (like `mlp calc-efs`)
    mtplib errors POT DATA [--json F]     (eqs. 8-10: energy/atom, force components, stress)
    mtplib convert IN OUT                 (cfg <-> extxyz)
    mtplib mindist DATA
    mtplib compile                        (the kernels of `evaluate`, compiled ahead of time)
    mtplib train ... | scan ... | grade ... | select ... | sparsify ... | md ... | relax ...
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import warnings


class CLIError(Exception):
    """An error the CLI reports as one line, without a traceback."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit code 2) instead of a usage block."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _number(kind, low, strict, what):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(f"{text} is not {what}")
        return value
    parse.__name__ = what
    return parse


positive_float = _number(float, 0.0, True, "a positive number")
nonnegative_float = _number(float, 0.0, False, "a number >= 0")
positive_int = _number(int, 0, True, "a positive integer")
nonnegative_int = _number(int, 0, False, "an integer >= 0")

# Arguments (dest) that name a file the command writes.
OUTPUT_ARGS = ("out", "output", "json", "trajectory", "candidates")


def _check_species_arguments(argv) -> None:
    """Every value after --species is a chemical element: an output path written after
    ``--species Cu Au`` (which argparse reads as a species) or a non-element is named."""
    from ase.data import atomic_numbers
    inside = False
    for token in argv:
        if token == "--species":
            inside = True
            continue
        if token.startswith("-"):
            inside = False
            continue
        if inside and (token not in atomic_numbers or token == "X"):
            hint = (" (an output path written after --species is read as a species: put it "
                    "before --species)" if any(c in token for c in "./") else "")
            raise CLIError(f"--species: {token!r} is not a chemical element{hint}")


def _check_outputs(args) -> None:
    from .io import check_output_path
    for dest in OUTPUT_ARGS:
        value = getattr(args, dest, None)
        if isinstance(value, str):
            check_output_path(value, what=dest if dest != "out" else "output")


def _species(args):
    return list(args.species) if getattr(args, "species", None) else None


def _load_potential(path, species=None):
    from .potential import MTPotential
    return MTPotential.load(path, species=species)


def cmd_init(args):
    from .potential import MTPotential
    pot = MTPotential.from_level(args.level, args.species, args.min_dist, args.max_dist,
                                 args.radial_basis_size, args.radial_basis_type)
    pot.save(args.out)
    print(f"{args.out}: untrained level-{args.level} MTP for {' '.join(args.species)}: "
          f"{pot.alpha_scalar_moments} basis functions, {pot.radial_funcs_count} radial functions, "
          f"{pot.parameter_count} parameters")


def _predictions(pot, images):
    n = len(images)
    results = []
    for k, atoms in enumerate(images):
        results.append(pot.evaluate(atoms, where=f"configuration {k}"))
        if n >= 200 and (k + 1) % max(1, n // 10) == 0:
            print(f"  evaluated {k + 1}/{n}", file=sys.stderr)
    return results


# Above this many atoms `evaluate` runs numba's kernels on several threads instead of the
# one-thread compiled module (`mtplib compile`): where a second thread saves about as much
# as numba's start-up costs (estimated from benchmarks/RESULTS.md, bench_cli).
COMPILED_MAX_ATOMS = 200_000


def cmd_evaluate(args):
    from .io import read_frames, write_frames
    species = _species(args)
    pot = _load_potential(args.potential, species)
    species = species or pot.species
    frames = read_frames(args.data, species=species)
    from . import jit
    if len(frames.positions) > COMPILED_MAX_ATOMS and jit.available_threads() > 1:
        jit.stop_using_compiled_module()    # numba's threads gain more than its start-up
    # all configurations in joined arrays, one batched kernel pass per group of structures
    energy, forces, stress, energies = pot.evaluate_frames(frames, where=str(args.data))
    write_frames(args.out, frames.with_results(energy, forces, stress, energies), species=species)
    print(f"{args.out}: {len(frames)} configurations evaluated with {args.potential}")


def cmd_compile(args):
    from .warmup import compile_command_kernels
    try:
        compile_command_kernels(log=print)
    except RuntimeError as exc:
        raise CLIError(str(exc)) from None


def cmd_errors(args):
    from .analysis.errors import error_metrics, format_error_table, write_errors_json
    from .io import read_dataset
    species = _species(args)
    pot = _load_potential(args.potential, species)
    images = read_dataset(args.data, species=species or pot.species)
    metrics = error_metrics(images, _predictions(pot, images))
    print(format_error_table({str(args.data): metrics}))
    if args.json:
        write_errors_json(args.json, metrics)


def cmd_convert(args):
    from .io.cfg import convert
    convert(args.input, args.output, species=_species(args))
    print(f"{args.output}: converted from {args.input}")


def cmd_mindist(args):
    from .analysis.errors import min_distance
    from .io import read_dataset
    images = read_dataset(args.data, species=_species(args))
    dist, index = min_distance(images)
    print(f"{args.data}: minimal interatomic distance {dist:.6f} Å (configuration {index})")


def build_parser(command=None):
    """The argument parser; for a core verb (`command` in CORE_VERBS) without the
    sub-commands of SUBCOMMAND_MODULES, whose modules are slow to import."""
    parser = Parser(prog="mtplib", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init", help="write an untrained potential of a given level")
    p.add_argument("out")
    p.add_argument("--level", type=positive_int, required=True)
    p.add_argument("--species", nargs="+", required=True)
    p.add_argument("--min-dist", type=positive_float, default=2.0)
    p.add_argument("--max-dist", type=positive_float, default=5.0)
    p.add_argument("--radial-basis-size", type=positive_int, default=8)
    p.add_argument("--radial-basis-type", default="RBChebyshev",
                   choices=["RBChebyshev", "RBChebyshev_repuls"],
                   help="RBChebyshev_repuls: MLIP-2's repulsive core below --min-dist")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("evaluate", help="energies, forces, stresses of a dataset (calc-efs)")
    p.add_argument("potential")
    p.add_argument("data")
    p.add_argument("out")
    p.add_argument("--species", nargs="+")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("compile", help="compile the kernels of `evaluate` ahead of time, so that "
                       "it starts without loading numba")
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("errors", help="errors of a potential on a labelled dataset")
    p.add_argument("potential")
    p.add_argument("data")
    p.add_argument("--json", help="also write the errors as JSON here")
    p.add_argument("--species", nargs="+")
    p.set_defaults(func=cmd_errors)

    p = sub.add_parser("convert", help="convert between .cfg and extxyz (or any ASE format)")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--species", nargs="+", help="element of each MLIP type")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("mindist", help="smallest interatomic distance in a dataset")
    p.add_argument("data")
    p.add_argument("--species", nargs="+")
    p.set_defaults(func=cmd_mindist)

    if command in CORE_VERBS:
        return parser                 # (the other modules import scipy, ASE's calculators, ...)
    for module in SUBCOMMAND_MODULES:
        try:
            mod = __import__(module, fromlist=["add_parsers"])
        except ImportError:
            continue
        mod.add_parsers(sub)
    return parser


CORE_VERBS = ("init", "evaluate", "compile", "errors", "convert", "mindist")
# the verbs each module's add_parsers adds: a core verb's parser imports none of them
SUBCOMMAND_MODULES = {"mtplib.training.cli": ("train", "scan"),
                      "mtplib.active.cli": ("grade", "select", "sparsify", "md", "relax", "pool",
                                            "relax-pool", "hull")}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    command = argv[0] if argv else ""
    # before any kernel module is imported (the potential's among them)
    if command == "evaluate":
        # no BLAS in evaluate: OpenBLAS's idle threads only cost CPU (set before numpy loads)
        for name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, "1")
        from . import jit
        jit.use_compiled_module()          # when `mtplib compile` built it: no numba start-up
    elif command == "compile":
        from . import jit
        jit.record_calls()
    from .io.mtp import MTPFormatError
    from .potential import MTPInputError
    try:
        _check_species_arguments(argv)
    except CLIError as exc:
        print(f"mtplib {command}: error: {exc}", file=sys.stderr)
        return 2
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    warnings.simplefilter("once")
    import numpy as np
    np.set_printoptions(precision=6, suppress=True)
    try:
        _check_outputs(args)
        code = args.func(args)
    except (CLIError, MTPFormatError, MTPInputError, FileNotFoundError, ValueError) as exc:
        print(f"mtplib {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return int(code or 0)


if __name__ == "__main__":
    raise SystemExit(main())
