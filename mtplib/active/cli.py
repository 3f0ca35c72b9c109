"""`mtplib grade | select | md | relax` (MLIP-2's calc-grade, select-add, and lotf MD / relax).

    mtplib grade POT TRAIN DATA OUT [--state FILE] [--mode configuration|neighborhood]
        [--energy-weight W] [--force-weight W] [--stress-weight W] [--site-en-weight W]
    mtplib select POT TRAIN CANDIDATES OUT [--max N] [--threshold 1.001] [--force-weight W ...]
    mtplib sparsify POT TRAIN OUT [--mode configuration] [--threshold 1.001]
    mtplib md POT STRUCTURE --ensemble nvt --temperature 3000 --steps 20000 --timestep 1 \\
        --select 2 --break 10 --candidates OUT [--train TRAIN] [--seed 0] [--species ...]
    mtplib relax POT STRUCTURE --select 2 --break 10 --candidates OUT [--fmax 0.01] [--out F]
    mtplib pool OUT --elements Ag Pd --lattices fcc bcc hcp --max-atoms 7 [--files F ...]
    mtplib relax-pool POT POOL OUT [--train TRAIN] [--break 2] [--reference emt] [--steps K]
    mtplib hull RELAXED --elements Ag Pd --csv hull.csv [--plot hull.png] [--reference REF]

The active-set state is the file --state, by default POT.als.npz (POT's name) in the folder of
the output (OUT, or --candidates for md and relax), never beside an input; it is built from
TRAIN when absent. The weights of the energy, force, stress and site-energy rows (MLIP's
`mlp select-add` options; `mtplib.active.SelectionWeights`) default to those of --mode: energy 1
(configuration) or site energy 1 (neighborhood), the others 0; a weight given overrides its
default, and the weights are stored in the state file.
"""
from __future__ import annotations

import sys

from ..cli import nonnegative_float, positive_float, positive_int


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


def _potential(args):
    from ..potential import MTPotential
    species = list(args.species) if getattr(args, "species", None) else None
    return MTPotential.load(args.potential, species=species)


WEIGHT_OPTIONS = {"energy": "--energy-weight", "forces": "--force-weight",
                  "stress": "--stress-weight", "site_energy": "--site-en-weight"}


def _weights(args, mode):
    """SelectionWeights of the --*-weight options (None when none is given)."""
    from .grade import ActiveSetError, SelectionWeights
    given = {k: getattr(args, k + "_weight", None) for k in WEIGHT_OPTIONS}
    given = {k: v for k, v in given.items() if v is not None}
    if not given:
        return None
    options = " ".join(f"{WEIGHT_OPTIONS[k]} {v:g}" for k, v in given.items())
    weights = SelectionWeights(**{**SelectionWeights.for_mode(mode or "configuration").as_dict(),
                                  **given})
    if not (weights.as_array() > 0).any():
        raise ActiveSetError(f"{options}: all selection weights are zero (with --mode "
                             f"{mode or 'configuration'}'s defaults); give at least one > 0")
    if mode is not None and weights.mode != mode:
        raise ActiveSetError(f"{options}: --mode {mode} needs "
                             f"{'--site-en-weight > 0' if mode == 'neighborhood' else '--site-en-weight 0'}")
    return weights.checked(options)


def _active_set(args, pot, output):
    """The active set from --state, default POT.als.npz in the folder of `output`."""
    from .grade import ActiveSetError, check_mode, load_or_build, state_path_for
    state = args.state or state_path_for(args.potential, beside=output)
    mode = check_mode(args.mode) if getattr(args, "mode", None) else None
    weights = _weights(args, mode)
    if weights is not None:
        mode = weights.mode
    aset = load_or_build(pot, state, getattr(args, "train", None),
                         mode=mode or "configuration", log=_log, weights=weights)
    if mode is not None and aset.mode != mode:
        raise ActiveSetError(f"{state}: active set in {aset.mode} mode, but --mode {mode} asked; "
                             "delete the state file to rebuild it")
    if weights is not None and aset.weights != weights:
        raise ActiveSetError(f"{state}: active set with selection weights ({aset.weights}), but "
                             f"({weights}) asked; delete the state file to rebuild it")
    return aset


def cmd_grade(args):
    from ..io import read_dataset, write_dataset
    pot = _potential(args)
    aset = _active_set(args, pot, args.out)
    images = read_dataset(args.data, species=pot.species)
    gamma = aset.grade_many(images, where=str(args.data))
    for atoms in images:
        atoms.calc = None
    write_dataset(args.out, images, species=pot.species)
    print(f"{args.out}: {len(images)} configurations graded ({aset.mode} mode"
          f"{aset.weights_note}); max gamma "
          f"{gamma.max() if len(gamma) else 0:.4g}, {(gamma > 1 + 1e-6).sum()} extrapolating")


def cmd_select(args):
    from ..io import read_dataset, write_dataset
    from .select import select_add
    pot = _potential(args)
    aset = _active_set(args, pot, args.out)
    pool = read_dataset(args.candidates, species=pot.species)
    sel = select_add(aset, pool, max_count=args.max, threshold=args.threshold,
                     where=str(args.candidates))
    chosen = [pool[k] for k in sel.selected]
    for k, atoms in zip(sel.selected, chosen):
        atoms.calc = None
        atoms.info["gamma"] = float(sel.gamma[k])
    write_dataset(args.out, chosen, species=pot.species)
    print(f"{args.out}: {len(chosen)} of {len(pool)} candidates selected "
          f"(max gamma {sel.gamma.max() if len(pool) else 0:.4g}, {sel.swaps} swaps)")


def cmd_sparsify(args):
    from ..io import read_dataset, write_dataset
    from .grade import check_mode
    from .sparsify import sparsify
    pot = _potential(args)
    images = read_dataset(args.train, species=pot.species)
    if not images:
        raise ValueError(f"{args.train}: no configurations")
    sparse = sparsify(pot, images, mode=check_mode(args.mode), threshold=args.threshold,
                      where=str(args.train))
    write_dataset(args.out, [images[k] for k in sparse.kept], species=pot.species)
    dropped = sparse.dropped(len(images))
    worst = sparse.gamma[dropped].max() if dropped else 0.0
    print(f"{args.out}: kept {len(sparse.kept)} of {len(images)} configurations of {args.train} "
          f"(max gamma of the {len(dropped)} dropped w.r.t. the kept: {worst:.4g}; "
          f"{sparse.rounds} maxvol rounds)")


def _structure(args, pot):
    from ..io import read_dataset
    images = read_dataset(args.structure, species=pot.species)
    if not images:
        raise ValueError(f"{args.structure}: no structure")
    atoms = images[args.index]
    pot.types_of(atoms, where=f"{args.structure}")
    return atoms


def _thresholds(args):
    from .md import Thresholds
    return Thresholds(gamma_select=args.select, gamma_break=args.break_, interval=args.interval,
                      max_forces_check=args.max_forces_check, min_distance=args.min_distance,
                      std_select=args.std_select, std_break=args.std_break)


def _committee(args, pot):
    if not args.committee:
        return None
    from ..potential import MTPotential
    from .committee import Committee
    return Committee([pot] + [MTPotential.load(p, species=pot.species) for p in args.committee])


def _grading(args, pot):
    """Active set unless --no-gamma; a committee with --committee."""
    aset = None if args.no_gamma else _active_set(args, pot, args.candidates)
    return aset, _committee(args, pot)


def cmd_md(args):
    import ase.io

    from .md import run_md
    pot = _potential(args)
    atoms = _structure(args, pot)
    aset, committee = _grading(args, pot)
    result = run_md(pot, atoms, active_set=aset, committee=committee, ensemble=args.ensemble,
                    temperature=args.temperature, steps=args.steps, timestep=args.timestep,
                    pressure=args.pressure, thresholds=_thresholds(args),
                    candidates=args.candidates, trajectory=args.trajectory,
                    trajectory_interval=args.trajectory_interval,
                    progress_interval=args.progress_interval, seed=args.seed,
                    scenario=args.scenario or f"md:{args.structure}", log=_log,
                    engine=args.engine)
    if args.out:
        atoms.calc = None
        ase.io.write(args.out, atoms, format="extxyz")
    print(f"{args.structure}: {result.steps} steps, {result.reason}: {result.message}; "
          f"{result.candidates} candidates in {args.candidates}")


def cmd_relax(args):
    import ase.io

    from .relax import run_relax
    pot = _potential(args)
    atoms = _structure(args, pot)
    aset, committee = _grading(args, pot)
    result = run_relax(pot, atoms, active_set=aset, committee=committee, optimizer=args.optimizer,
                       fmax=args.fmax, steps=args.steps, relax_cell=not args.fixed_cell,
                       pressure=args.pressure, thresholds=_thresholds(args),
                       candidates=args.candidates, trajectory=args.trajectory,
                       scenario=args.scenario or f"relax:{args.structure}", log=_log)
    if args.out:
        atoms.calc = None
        ase.io.write(args.out, atoms, format="extxyz")
    print(f"{args.structure}: {result.steps} steps, {result.reason}: {result.message}; "
          f"{result.candidates} candidates in {args.candidates}")


def cmd_pool(args):
    import ase.io

    from .pool import PoolSettings, enumerate_pool
    settings = PoolSettings(elements=tuple(args.elements), lattices=tuple(args.lattices),
                            max_atoms=args.max_atoms, structure_files=tuple(args.files or ()),
                            max_structures=args.max_structures, seed=args.seed)
    pool = enumerate_pool(settings)
    ase.io.write(args.out, pool, format="extxyz")
    print(f"{args.out}: {len(pool)} candidate structures")


def _write_relaxed(path, relaxations):
    import ase.io

    from .relax import relaxation_frames
    ase.io.write(path, relaxation_frames(relaxations), format="extxyz")


def cmd_relax_pool(args):
    from ..io import read_dataset
    from .relax import relax_pool, relax_pool_with_reference
    pool = read_dataset(args.pool)
    settings = dict(optimizer=args.optimizer, fmax=args.fmax, steps=args.steps)
    if args.reference:
        if args.reference.lower() != "emt":
            raise ValueError(f"--reference {args.reference!r}: only 'emt' here")
        from ase.calculators.emt import EMT
        out = relax_pool_with_reference(pool, EMT, **settings)
    else:
        pot = _potential(args)
        aset = _active_set(args, pot)
        out = relax_pool(pot, pool, active_set=aset, thresholds=_thresholds(args), **settings)
    _write_relaxed(args.out, out)
    counts = {s: sum(r.status == s for r in out) for s in
              ("converged", "stopped", "not-converged", "failed")}
    print(f"{args.out}: {len(out)} relaxations {counts}, {sum(r.calls for r in out)} calls")


def cmd_hull(args):
    from ..analysis.hull import hull_of_relaxed, hull_plot, write_hull_csv
    from ..io import read_dataset

    def hull_of(path):
        return hull_of_relaxed(read_dataset(path), args.elements, where=str(path))

    hull = hull_of(args.relaxed)
    ref = hull_of(args.reference) if args.reference else None
    write_hull_csv(args.csv, hull)
    if args.plot:
        hull_plot(args.plot, hull, reference=ref, label=args.label,
                  reference_label=args.reference_label)
    on = [hull.names[i] for i in hull.vertices]
    print(f"{args.csv}: {len(hull.names)} structures, {int(hull.on_hull.sum())} on the hull "
          f"(corners {on})")


def _common(p, structure=False):
    p.add_argument("potential", help="the .mtp potential")
    p.add_argument("--state", help="active-set state file, built from TRAIN when absent "
                                   "(default: POT.als.npz in the output's folder)")
    p.add_argument("--mode", choices=["configuration", "neighborhood", "neighbourhood"],
                   help="active-set mode when building it (default configuration)")
    p.add_argument("--species", nargs="+", help="element of each MLIP type")
    for name, option in WEIGHT_OPTIONS.items():
        p.add_argument(option, dest=name + "_weight", type=nonnegative_float, default=None,
                       help=f"weight of the {name.replace('_', '-')} rows in selection and "
                            f"grading (MLIP's {option}; default: --mode's, energy 1 or "
                            f"site-en 1, the others 0; force and stress rows cost 2 kernel "
                            f"passes per radial coefficient)")
    if structure:
        p.add_argument("structure", help="starting structure (extxyz, cfg, or any ASE format)")
        p.add_argument("--index", type=int, default=-1, help="which frame of STRUCTURE")
        p.add_argument("--train", help="training set to build the active set from if needed")
        p.add_argument("--select", type=positive_float, default=2.0, help="gamma_select (default 2)")
        p.add_argument("--break", dest="break_", type=positive_float, default=10.0,
                       help="gamma_break (default 10)")
        p.add_argument("--candidates", required=True, help="extxyz file the candidates go to")
        p.add_argument("--interval", type=positive_int, default=1, help="grade every N steps")
        p.add_argument("--max-forces-check", type=positive_float, default=None,
                       help="also grade whenever the largest force exceeds this (eV/Å)")
        p.add_argument("--min-distance", type=nonnegative_float, default=0.5,
                       help="stop as blow-up when atoms come closer (Å)")
        p.add_argument("--committee", nargs="+", help="more potentials: query by committee")
        p.add_argument("--std-select", type=float, help="select when the force spread exceeds (eV/Å)")
        p.add_argument("--std-break", type=float, help="stop when the force spread exceeds (eV/Å)")
        p.add_argument("--no-gamma", action="store_true", help="committee only, no active set")
        p.add_argument("--pressure", type=float, default=0.0, help="GPa")
        p.add_argument("--trajectory", help="thinned trajectory (extxyz)")
        p.add_argument("--scenario", help="label written to the candidates' info")
        p.add_argument("--out", help="final structure (extxyz)")


def add_parsers(sub):
    p = sub.add_parser("grade", help="extrapolation grade of a dataset (calc-grade)")
    _common(p)
    p.add_argument("train", help="training set (builds the active set if the state is absent)")
    p.add_argument("data")
    p.add_argument("out")
    p.set_defaults(func=cmd_grade)

    p = sub.add_parser("select", help="select candidates that extend the active set (select-add)")
    _common(p)
    p.add_argument("train")
    p.add_argument("candidates")
    p.add_argument("out")
    p.add_argument("--max", type=int, default=None, help="select at most N configurations")
    p.add_argument("--threshold", type=float, default=1.001,
                   help="a row enters when |b A^-1| exceeds this (default 1.001)")
    p.set_defaults(func=cmd_select)

    p = sub.add_parser("sparsify", help="keep the training configurations the active set "
                       "needs (select-add on the training set itself)")
    p.add_argument("potential", help="the .mtp potential")
    p.add_argument("train", help="training set to sparsify")
    p.add_argument("out", help="the kept configurations, with their labels")
    p.add_argument("--mode", default="configuration",
                   choices=["configuration", "neighborhood", "neighbourhood"],
                   help="active-set mode (default configuration)")
    p.add_argument("--threshold", type=float, default=1.001,
                   help="every dropped configuration has gamma <= this w.r.t. the kept ones")
    p.add_argument("--species", nargs="+", help="element of each MLIP type")
    p.set_defaults(func=cmd_sparsify)

    p = sub.add_parser("md", help="learning-on-the-fly molecular dynamics")
    _common(p, structure=True)
    p.add_argument("--ensemble", default="nvt", choices=["nve", "nvt", "langevin", "nvt-nhc", "npt"])
    p.add_argument("--temperature", type=nonnegative_float, default=300.0, help="K")
    p.add_argument("--steps", type=positive_int, default=10000)
    p.add_argument("--timestep", type=positive_float, default=1.0, help="fs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--trajectory-interval", type=positive_int, default=100)
    p.add_argument("--progress-interval", type=positive_int, default=1000)
    p.add_argument("--engine", default="ase", choices=["ase", "native"],
                   help="native: the ASE integrator's arithmetic on arrays, the same trajectory "
                        "without the per-step Atoms/calculator round trip (nve, nvt; no committee)")
    p.set_defaults(func=cmd_md)

    p = sub.add_parser("relax", help="learning-on-the-fly relaxation of positions and cell")
    _common(p, structure=True)
    p.add_argument("--optimizer", default="fire", choices=["fire", "bfgs"])
    p.add_argument("--fmax", type=positive_float, default=0.01, help="eV/Å")
    p.add_argument("--steps", type=positive_int, default=1000)
    p.add_argument("--fixed-cell", action="store_true", help="relax positions only")
    p.set_defaults(func=cmd_relax)

    p = sub.add_parser("pool", help="candidate pool: derivative superstructures (icet)")
    p.add_argument("out", help="extxyz file of the pool")
    p.add_argument("--elements", nargs="+", required=True)
    p.add_argument("--lattices", nargs="+", default=["fcc", "bcc", "hcp"])
    p.add_argument("--max-atoms", type=int, default=6)
    p.add_argument("--files", nargs="+", help="further structure files")
    p.add_argument("--max-structures", type=int, help="a seeded draw of at most N")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_pool)

    p = sub.add_parser("relax-pool", help="relax a pool (gamma-checked, or with a reference)")
    p.add_argument("potential", help="the .mtp potential (ignored with --reference)")
    p.add_argument("pool")
    p.add_argument("out", help="extxyz of the relaxed (or stopped) structures")
    p.add_argument("--state", help="active-set state file (default: POT.als.npz beside POT)")
    p.add_argument("--mode", choices=["configuration", "neighborhood"])
    p.add_argument("--species", nargs="+", help="element of each MLIP type")
    p.add_argument("--train", help="training set to build the active set from if needed")
    p.add_argument("--select", type=float, default=2.0)
    p.add_argument("--break", dest="break_", type=float, default=2.0)
    p.add_argument("--interval", type=int, default=1)
    p.add_argument("--max-forces-check", type=float, default=None)
    p.add_argument("--min-distance", type=float, default=0.5)
    p.add_argument("--std-select", type=float)
    p.add_argument("--std-break", type=float)
    p.add_argument("--reference", help="relax with this reference instead (emt)")
    p.add_argument("--optimizer", default="bfgs", choices=["fire", "bfgs"])
    p.add_argument("--fmax", type=float, default=0.01, help="eV/Å")
    p.add_argument("--steps", type=int, default=200, help="K: steps before 'not converged'")
    p.set_defaults(func=cmd_relax_pool)

    p = sub.add_parser("hull", help="formation energies and the lower convex hull")
    p.add_argument("relaxed", help="relaxed structures with info 'relaxed_energy' (relax-pool)")
    p.add_argument("--elements", nargs="+", required=True)
    p.add_argument("--csv", required=True)
    p.add_argument("--plot")
    p.add_argument("--reference", help="the reference's relaxed structures, for the plot")
    p.add_argument("--label", default="MTP", help="name of RELAXED's model in the plot")
    p.add_argument("--reference-label", default="reference")
    p.set_defaults(func=cmd_hull)
