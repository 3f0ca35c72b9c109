"""Isolated-atom reference energies: each element alone in a large box.

How a code computes a lone atom (periodic box or not, Γ point only, spin) is part of its
registry entry (`mtplib.labeling.registry`)."""

from __future__ import annotations

from ase import Atoms
from ase.data import atomic_numbers, ground_state_magnetic_moments

from .registry import get_code, make_calculator


def isolated_atom(symbol: str, name: str, kwargs: dict, box: float, spin: bool):
    """Atoms and calculator kwargs for a lone ``symbol`` with reference ``name``.

    Spin polarisation (ground-state moment from ``ase.data``) is requested where the code's
    entry says how (tblite: multiplicity; gpaw: magmoms + hund; vasp: ispin 2 + magmoms;
    ``module:Class``: initial magnetic moments); EMT has no spin and espresso runs
    unpolarised. Returns (atoms, kwargs, mode) where mode says what was done.
    """
    code = get_code(name)
    kwargs = dict(kwargs or {})
    moment = float(ground_state_magnetic_moments[atomic_numbers[symbol]])
    atoms = Atoms(symbol, positions=[(box / 2,) * 3], cell=[box] * 3, pbc=code.isolated_periodic)
    # An atom in a box has no dispersion: Γ only. The crystal's k-point density would give
    # e.g. 2x2x2 in a 10 Å box (ASE's kspacing has no 2π), multiplying the cost for nothing.
    if code.isolated_gamma_only is not None:
        code.isolated_gamma_only(kwargs)
    mode = "none"
    if spin and moment > 0 and code.isolated_spin is not None:
        mode = code.isolated_spin(atoms, kwargs, moment)
    return atoms, kwargs, mode


def isolated_energies(elements, name: str, kwargs: dict | None, box: float = 12.0,
                      spin: bool = True, mpi_prefix: str = "", retries: int = 0,
                      timeout: float | None = None, log=print, blas: str = "auto") -> dict:
    """Energy of each element alone in a cubic box of edge ``box`` (Å); each calculation
    with ``retries`` more attempts and ``timeout`` seconds, and the BLAS ``blas``, as in
    labelling."""
    from .label import RetryingCalculator
    energies, spin_modes = {}, {}
    for symbol in elements:
        atoms, kw, mode = isolated_atom(symbol, name, kwargs, box, spin)
        atoms.calc = RetryingCalculator(lambda kw=kw: make_calculator(name, kw, mpi_prefix, blas),
                                        retries=retries, timeout=timeout, log=log)
        energies[symbol] = float(atoms.get_potential_energy())
        spin_modes[symbol] = mode
    return {"reference": name, "box": box, "energies": energies, "spin": spin_modes}
