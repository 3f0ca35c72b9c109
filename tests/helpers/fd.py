"""Central finite differences for the tests: forces, stress, and gradients in parameters.

Every function takes its step explicitly; the calling test states its tolerance beside the
assertion. The error of a central difference is O(step^2) plus round-off of order
eps * |E| / step, so a step of 1e-5 (Å, or strain) suits float64 energies of a few eV.
"""
import numpy as np

VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))     # ASE's order: xx yy zz yz xz xy


def central_difference(f, x, step, indices=None):
    """(f(x + step e_k) - f(x - step e_k)) / (2 step) for each k in `indices` (all of x by
    default), stacked along the first axis; f takes a copy of x and returns a number or an
    array. f may change state (e.g. set a potential's parameters): the caller restores it."""
    x = np.asarray(x, dtype=np.float64)
    indices = range(x.size) if indices is None else indices
    out = []
    for k in indices:
        values = []
        for sign in (1, -1):
            shifted = x.copy()
            shifted.flat[k] += sign * step
            values.append(np.asarray(f(shifted), dtype=np.float64))
        out.append((values[0] - values[1]) / (2 * step))
    return np.array(out)


def numerical_forces(atoms, energy, step, indices=None):
    """F = -dE/dr by central differences of `step` Å: an (n_atoms, 3) array, NaN except at
    the (atom, axis) pairs of `indices` (all by default). `energy(atoms) -> float`."""
    indices = [(a, x) for a in range(len(atoms)) for x in range(3)] if indices is None else indices
    forces = np.full((len(atoms), 3), np.nan)
    for atom, axis in indices:
        values = []
        for sign in (1, -1):
            moved = atoms.copy()
            moved.positions[atom, axis] += sign * step
            values.append(energy(moved))
        forces[atom, axis] = -(values[0] - values[1]) / (2 * step)
    return forces


def numerical_stress(atoms, energy, step, components=range(6)):
    """sigma = (1/V) dE/d(strain) by central differences of a symmetric strain of `step`
    (positions scaled with the cell), in ASE's sign and Voigt order: a (6,) array, NaN except
    at `components`. `energy(atoms) -> float`."""
    stress = np.full(6, np.nan)
    volume = atoms.get_volume()
    for n in components:
        a, b = VOIGT[n]
        values = []
        for sign in (1, -1):
            strain = np.zeros((3, 3))
            strain[a, b] += sign * step / 2
            strain[b, a] += sign * step / 2      # a diagonal component gets the whole step
            strained = atoms.copy()
            strained.set_cell(atoms.cell.array @ (np.eye(3) + strain), scale_atoms=True)
            values.append(energy(strained))
        stress[n] = (values[0] - values[1]) / (2 * step) / volume
    return stress
