"""Isolated-atom reference energies: each element alone in a large box."""

from __future__ import annotations

from ase import Atoms
from ase.data import atomic_numbers, ground_state_magnetic_moments

# Codes for which a plane-wave periodic box is the natural setting.
PERIODIC_CODES = {"gpaw", "espresso", "vasp"}


def isolated_atom(symbol: str, name: str, kwargs: dict, box: float, spin: bool):
    """Atoms and calculator kwargs for a lone ``symbol`` with reference ``name``.

    Spin polarisation (ground-state moment from ``ase.data``) is requested where
    the calculator has a way to take it: tblite (multiplicity,
    spin_polarization), gpaw (magmoms + hund), vasp (ispin=2 + magmoms), and
    initial magnetic moments for ``module:Class`` calculators. EMT has no spin;
    espresso runs unpolarised (species-indexed starting_magnetization is left
    to ``reference.kwargs``). Returns (atoms, kwargs, mode) where mode says what
    was done.
    """
    kwargs = dict(kwargs or {})
    moment = float(ground_state_magnetic_moments[atomic_numbers[symbol]])
    atoms = Atoms(symbol, positions=[(box / 2,) * 3], cell=[box] * 3,
                  pbc=name in PERIODIC_CODES or ":" in name)
    # An atom in a box has no dispersion: Γ only. The crystal's k-point density would give
    # e.g. 2x2x2 in a 10 Å box (ASE's kspacing has no 2π), multiplying the cost for nothing.
    if name == "gpaw":
        kwargs["kpts"] = {"size": (1, 1, 1), "gamma": True}
    elif name in ("espresso", "vasp"):
        kwargs.pop("kspacing", None)
        kwargs["kpts"] = (1, 1, 1)
    mode = "none"
    if spin and moment > 0:
        if name == "tblite":
            kwargs.setdefault("multiplicity", int(round(moment)) + 1)
            kwargs.setdefault("spin_polarization", 1.0)
            mode = f"multiplicity {kwargs['multiplicity']}"
        elif name == "gpaw":
            atoms.set_initial_magnetic_moments([moment])
            kwargs.setdefault("hund", True)
            mode = "hund"
        elif name == "vasp":
            atoms.set_initial_magnetic_moments([moment])
            kwargs.setdefault("ispin", 2)
            mode = f"ispin 2, magmom {moment:g}"
        elif ":" in name:
            atoms.set_initial_magnetic_moments([moment])
            mode = f"initial magmom {moment:g}"
    return atoms, kwargs, mode


def isolated_energies(elements, name: str, kwargs: dict | None, box: float = 12.0,
                      spin: bool = True, mpi_prefix: str = "") -> dict:
    """Energy of each element alone in a cubic box of edge ``box`` (Å)."""
    from mtplib.workflow.reference import make_calculator

    energies, spin_modes = {}, {}
    for symbol in elements:
        atoms, kw, mode = isolated_atom(symbol, name, kwargs, box, spin)
        atoms.calc = make_calculator(name, kw, mpi_prefix)
        energies[symbol] = float(atoms.get_potential_energy())
        spin_modes[symbol] = mode
    return {"reference": name, "box": box, "energies": energies, "spin": spin_modes}


def main(argv=None) -> int:
    """CLI used by the isolated_energies rule (rank 0 writes under MPI)."""
    import argparse
    import json
    from pathlib import Path

    from mtplib.workflow.label import _world

    p = argparse.ArgumentParser(description="Isolated-atom energies with the reference calculator")
    p.add_argument("--elements", required=True, help="comma-separated symbols")
    p.add_argument("--reference", required=True, help="JSON of the config section 'reference'")
    p.add_argument("--mpi-prefix", default="")
    p.add_argument("--output", required=True)
    args = p.parse_args(argv)
    ref = json.loads(args.reference)
    comm = _world()
    result = isolated_energies(args.elements.split(","), ref["name"], ref.get("kwargs"),
                               ref.get("isolated_box", 12.0), ref.get("isolated_spin", True),
                               args.mpi_prefix)
    if comm is None or comm.Get_rank() == 0:
        text = json.dumps(result, indent=2)
        print(text, flush=True)
        out = Path(args.output)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(text + "\n")
        tmp.replace(out)
    return 0


if __name__ == "__main__":
    from mtplib.workflow.label import run_mpi_safe

    raise SystemExit(run_mpi_safe(main))
