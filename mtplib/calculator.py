"""ASE calculator for a Moment Tensor Potential."""
from __future__ import annotations

from ase.calculators.calculator import Calculator, all_changes

from .potential import MTPotential


class MTPCalculator(Calculator):
    """Energy, free energy, forces, stress and per-atom energies from an `MTPotential`.

    `potential` is an `MTPotential` or a path to a `.mtp` file; `species` names the
    elements of the potential's types when the file does not record them.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress", "energies"]
    # an MTP depends on positions, species, cell and pbc only
    ignored_changes = {"initial_charges", "initial_magmoms"}

    def __init__(self, potential, species=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(potential, MTPotential):
            potential = MTPotential.load(potential, species=species)
        elif species is not None:
            potential.species = list(species)
        self.potential = potential

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        # Calculator.calculate keeps a copy of the atoms (for check_state) and also makes the
        # calculator's directory, a file-system call per step: an MTP writes no files
        if atoms is not None:
            self.atoms = atoms.copy()
        # neighbours within max_dist -> site energies -> sum; forces and virial by reverse mode
        result = self.potential.evaluate(self.atoms)
        self.results["energy"] = self.results["free_energy"] = result["energy"]
        self.results["forces"] = result["forces"]
        self.results["energies"] = result["energies"]
        if result["stress"] is not None:
            self.results["stress"] = result["stress"]
        elif "stress" in properties:
            from ase.calculators.calculator import PropertyNotImplementedError
            raise PropertyNotImplementedError("stress needs a 3-D periodic cell")
