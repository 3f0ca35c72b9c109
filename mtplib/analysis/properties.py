"""Material properties for validation: energy-volume curves, equation-of-state fits and
clamped-ion elastic constants, for any ASE calculator (the MTP or the reference)."""
from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.eos import EquationOfState
from ase.units import GPa

EV_PER_A3_TO_GPA = 1.0 / GPa
VOIGT_PAIRS = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]


def energy_volume(unit: Atoms, calc, scales=np.linspace(0.94, 1.06, 9)):
    """(volumes per atom, energies per atom) of isotropic scalings of `unit`'s cell by each
    of `scales` (linear factors), atoms scaled with the cell."""
    volumes, energies = [], []
    for s in scales:
        atoms = unit.copy()
        atoms.set_cell(unit.cell.array * s, scale_atoms=True)
        atoms.calc = calc
        volumes.append(atoms.get_volume() / len(atoms))
        energies.append(atoms.get_potential_energy() / len(atoms))
    return np.array(volumes), np.array(energies)


def equation_of_state(volumes, energies, eos="birchmurnaghan"):
    """(v0, e0, B in GPa) of an ASE equation-of-state fit to per-atom volumes and energies."""
    v0, e0, b = EquationOfState(volumes, energies, eos=eos).fit()
    return float(v0), float(e0), float(b * EV_PER_A3_TO_GPA)


def elastic_constants(unit: Atoms, calc, delta=0.005):
    """Clamped-ion elastic constants C_ij (GPa, Voigt order xx yy zz yz xz xy) by central
    differences of the stress under strains ±delta (engineering shear strain)."""
    C = np.zeros((6, 6))
    for j, (a, b) in enumerate(VOIGT_PAIRS):
        stresses = []
        for sign in (1, -1):
            eps = np.zeros((3, 3))
            eps[a, b] = eps[b, a] = sign * delta / (1 if a == b else 2)
            atoms = unit.copy()
            atoms.set_cell(unit.cell.array @ (np.eye(3) + eps), scale_atoms=True)
            atoms.calc = calc
            stresses.append(atoms.get_stress(voigt=True))
        C[:, j] = (stresses[0] - stresses[1]) / (2 * delta) * EV_PER_A3_TO_GPA
    return C


def relax_unit_cell(unit: Atoms, calc, fmax: float = 0.01, steps: int = 200, cell: bool = True,
                    min_height: float = 0.0, log=print):
    """`unit` relaxed by `calc` within its space group (ase FixSymmetry): the positions, and
    the cell at zero stress too when `cell` (FrechetCellFilter), by BFGS until the largest
    generalized force (the forces and FrechetCellFilter's stress x volume per atom) is below
    `fmax` (eV/Å) or after `steps` steps. `min_height` > 0 (a Γ-only calc): the supercell
    repeated to that height is relaxed and cut back to the unit cell, its images kept equal
    by the symmetry.
    Returns (relaxed unit cell, record: steps, converged, energy per atom, largest force, largest
    stress in GPa, volume per atom before and after)."""
    from ase.constraints import FixSymmetry
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS

    from ..structures import height_repeats

    reps = height_repeats(unit, min_height)
    atoms = unit.repeat(reps)
    atoms.calc = calc
    atoms.set_constraint(FixSymmetry(atoms, symprec=1e-3))
    target = FrechetCellFilter(atoms) if cell else atoms
    volume_before = atoms.get_volume() / len(atoms)
    optimizer = BFGS(target, logfile=None)
    n = 0
    for n, _ in enumerate(optimizer.irun(fmax=fmax, steps=steps), start=0):
        log(f"relax step {n}: energy {atoms.get_potential_energy() / len(atoms):.6f} "
            f"eV/atom, largest force {np.abs(atoms.get_forces()).max():.4f} eV/Å")
    converged = bool(optimizer.converged())
    forces, stress = atoms.get_forces(), atoms.get_stress(voigt=True)
    record = {"steps": n, "converged": converged, "supercell": reps, "fmax": fmax,
              "energy_per_atom": float(atoms.get_potential_energy() / len(atoms)),
              "max_force": float(np.abs(forces).max()),
              "max_stress_GPa": float(np.abs(stress).max() * EV_PER_A3_TO_GPA),
              "volume_per_atom_before": float(volume_before),
              "volume_per_atom_after": float(atoms.get_volume() / len(atoms))}
    atoms.set_constraint()
    relaxed = unit.copy()
    relaxed.set_cell(atoms.cell.array / np.array(reps)[:, None], scale_atoms=False)
    relaxed.positions = atoms.positions[:len(unit)]
    relaxed.wrap()
    return relaxed, record


def voigt_bulk_modulus(C):
    """Voigt average of the bulk modulus (GPa) from a 6x6 stiffness matrix:
    (C11 + C22 + C33 + 2 (C12 + C13 + C23)) / 9; (C11 + 2 C12) / 3 for a cubic crystal."""
    C = np.asarray(C)
    return float((C[0, 0] + C[1, 1] + C[2, 2] + 2 * (C[0, 1] + C[0, 2] + C[1, 2])) / 9.0)
