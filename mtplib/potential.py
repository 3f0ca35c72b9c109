"""The Moment Tensor Potential: species, radial basis, basis (alpha indices), coefficients.

`MTPotential` gathers arrays and calls the kernels of `mtplib.kernels.mtp`; it holds no
physics of its own. Load and save go through MLIP-2's `.mtp` format (`mtplib.io.mtp`).
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from .basis import basis_for_level
from .io.mtp import RADIAL_BASIS_TYPES, read_mtp, write_mtp
from .kernels.mtp import (CHUNK, kernel_tables, mtp_batch, mtp_parallel, mtp_serial,
                          repulsion_terms)
from .memory import keep_freed_memory
from .neighbors import StructureError, groups_by_atoms, neighbor_csr_batch, neighbor_csr_shortest

keep_freed_memory()      # reuse freed evaluation buffers: see memory

# below this many atoms per thread, one thread beats launching the parallel kernel
ATOMS_PER_THREAD = 64
# evaluate_many's group size: with ~50 neighbours per atom, its largest array (pair
# vectors and gradients) stays below glibc's 32 MiB mmap threshold
BATCH_ATOMS = 8192


class MTPInputError(ValueError):
    """Bad input to the potential: unknown species, NaN coordinates, a degenerate cell."""


def _default_blocks(n_atoms):
    # many small blocks balance the threads best (benchmarks/RESULTS.md, bench_evaluate.py), but
    # a block of fewer than CHUNK atoms runs the products on fewer vector lanes (slower)
    from .jit import get_num_threads
    threads = get_num_threads()
    return max(1, min(32 * threads, max(threads, n_atoms // CHUNK)))


NOT_TRAINED = ("where the potential is not trained: its radial basis is flat below min_dist, "
               "so nothing repels the atoms there (radial_basis_type RBChebyshev_repuls adds a "
               "repulsive core)")


@dataclass
class CloseContacts:
    """The structures of one run (an MD run, an `evaluate_many` call) with atoms closer than
    min_dist, summed up in one warning line at the end of the run."""

    where: str
    count: int = 0
    shortest: float = np.inf
    first: str = ""

    def add(self, distance, where):
        self.count += 1
        self.first = self.first or where
        self.shortest = min(self.shortest, float(distance))

    def message(self, min_dist):
        return (f"{self.where}: {self.count} structure evaluation(s) had atoms closer than "
                f"min_dist = {min_dist:g} Å (shortest {self.shortest:.3f} Å, first in "
                f"{self.first}), {NOT_TRAINED}")


@dataclass
class MTPotential:
    """A multi-component MTP (Novikov et al. 2021, eqs. 2-4)."""

    species_count: int
    min_dist: float
    max_dist: float
    radial_basis_size: int
    radial_funcs_count: int
    alpha_index_basic: np.ndarray
    alpha_index_times: np.ndarray
    alpha_moment_mapping: np.ndarray
    alpha_moments_count: int
    scaling: float = 1.0
    radial_coeffs: np.ndarray | None = None     # (S, S, radial_funcs_count, radial_basis_size)
    species_coeffs: np.ndarray | None = None    # (S,)
    moment_coeffs: np.ndarray | None = None     # (alpha_scalar_moments,)
    species: list[str] | None = None            # element of each MLIP type, when known
    potential_name: str = "MTP1m"
    potential_tag: str = ""
    radial_basis_type: str = "RBChebyshev"      # or "RBChebyshev_repuls" (RADIAL_BASIS_TYPES)
    source: str = "<memory>"
    _arrays: dict = field(default=None, repr=False, compare=False)
    _contacts: CloseContacts | None = field(default=None, repr=False, compare=False)

    # ---- construction -------------------------------------------------------------
    @classmethod
    def from_level(cls, level, species, min_dist=2.0, max_dist=5.0, radial_basis_size=8,
                   radial_basis_type="RBChebyshev"):
        """An untrained potential of `level` (MLIP-2's basis sizes) for a species list.

        `species` is a list of element symbols or a species count; `radial_basis_type` one of
        RADIAL_BASIS_TYPES ("RBChebyshev_repuls": MLIP-2's repulsive core below min_dist)."""
        basic, times, mapping, n_moments = basis_for_level(level)
        names = None if isinstance(species, int) else list(species)
        count = species if isinstance(species, int) else len(names)
        if count < 1:
            raise MTPInputError("a potential needs at least one species")
        if not 0 <= min_dist < max_dist:
            raise MTPInputError(f"need 0 <= min_dist < max_dist, got {min_dist} and {max_dist}")
        if radial_basis_size < 2:
            raise MTPInputError(f"radial_basis_size must be at least 2, got {radial_basis_size}")
        if radial_basis_type not in RADIAL_BASIS_TYPES:
            raise MTPInputError(f"unknown radial_basis_type {radial_basis_type!r}; use one of "
                                f"{RADIAL_BASIS_TYPES}")
        return cls(species_count=count, min_dist=float(min_dist), max_dist=float(max_dist),
                   radial_basis_size=int(radial_basis_size),
                   radial_funcs_count=int(basic[:, 0].max()) + 1, alpha_index_basic=basic,
                   alpha_index_times=times, alpha_moment_mapping=mapping,
                   alpha_moments_count=n_moments, species=names,
                   radial_basis_type=radial_basis_type)

    @classmethod
    def load(cls, path, species=None):
        """Read an MLIP-2 `.mtp` file; `species` overrides the element names it records."""
        data = read_mtp(path)
        if species is not None:
            if len(species) != data["species_count"]:
                raise MTPInputError(f"{path}: species {list(species)} given for a potential with "
                                    f"species_count = {data['species_count']}")
            data["species"] = list(species)
        for key in ("scaling", "min_dist", "max_dist", "radial_coeffs", "species_coeffs",
                    "moment_coeffs"):
            value = data.get(key)
            if value is not None and not np.all(np.isfinite(np.asarray(value, dtype=float))):
                raise MTPInputError(f"{path}: non-finite {key} (NaN or inf) in the potential; "
                                    "refit it or restore the file")
        return cls(**data, source=str(path))

    def save(self, path):
        write_mtp(path, self)

    def copy(self):
        return MTPotential(**self.to_dict())

    def to_dict(self):
        out = {k: getattr(self, k) for k in (
            "species_count", "min_dist", "max_dist", "radial_basis_size", "radial_funcs_count",
            "alpha_index_basic", "alpha_index_times", "alpha_moment_mapping",
            "alpha_moments_count", "scaling", "radial_coeffs", "species_coeffs", "moment_coeffs",
            "species", "potential_name", "potential_tag", "radial_basis_type", "source")}
        return {k: (v.copy() if isinstance(v, np.ndarray) else (list(v) if isinstance(v, list) else v))
                for k, v in out.items()}

    @property
    def repulsive(self):
        """True for MLIP-2's RBChebyshev_repuls: a repulsive core below min_dist."""
        return self.radial_basis_type == "RBChebyshev_repuls"

    # ---- sizes -------------------------------------------------------------------
    @property
    def alpha_scalar_moments(self):
        return len(self.alpha_moment_mapping)

    @property
    def is_trained(self):
        return all(x is not None for x in (self.radial_coeffs, self.species_coeffs, self.moment_coeffs))

    @property
    def parameter_count(self):
        """Radial + species + moment coefficients."""
        return (self.species_count ** 2 * self.radial_funcs_count * self.radial_basis_size
                + self.species_count + self.alpha_scalar_moments)

    def __str__(self):
        """A one-paragraph summary (the arrays are in `repr`)."""
        levels = [0] * self.alpha_moments_count      # level of a basic moment: 2 + 4 mu + nu
        for n, (mu, a, b, c) in enumerate(self.alpha_index_basic):
            levels[n] = 2 + 4 * int(mu) + int(a + b + c)
        for i, j, _, k in self.alpha_index_times:     # of a contraction: the sum of its factors
            levels[int(k)] = levels[int(i)] + levels[int(j)]
        level = max((levels[int(k)] for k in self.alpha_moment_mapping), default=0)
        species = ", ".join(self.species) if self.species else f"{self.species_count} species"
        state = "trained" if self.is_trained else "untrained"
        return (f"{state} MTP of level {level} for {species}: {self.parameter_count} parameters "
                f"({self.species_count ** 2 * self.radial_funcs_count * self.radial_basis_size}"
                f" radial, {self.species_count} species, {self.alpha_scalar_moments} moment "
                f"coefficients), {self.alpha_scalar_moments} basis functions from "
                f"{self.alpha_moments_count} moments, {self.radial_funcs_count} radial functions "
                f"of {self.radial_basis_size} Chebyshev polynomials on min_dist = "
                f"{self.min_dist:g} Å to cutoff max_dist = {self.max_dist:g} Å (from "
                f"{self.source})")

    def __setattr__(self, name, value):
        # any change of parameters invalidates the cached kernel arrays
        if name != "_arrays":
            object.__setattr__(self, "_arrays", None)
        object.__setattr__(self, name, value)

    # ---- kernel arrays ------------------------------------------------------------
    def kernel_arrays(self):
        """The arrays the kernels take, built once per parameter change."""
        if self._arrays is None:
            if not self.is_trained:
                raise MTPInputError(f"{self.source}: the potential is untrained (no radial, species or "
                                    "moment coefficients); train it before evaluating")
            if self.radial_basis_type not in RADIAL_BASIS_TYPES:
                raise MTPInputError(f"{self.source}: unknown radial_basis_type "
                                    f"{self.radial_basis_type!r}; use one of {RADIAL_BASIS_TYPES}")
            layout = canonical_layout(self.alpha_index_basic, self.alpha_index_times,
                                      self.alpha_moment_mapping, self.alpha_moments_count, self.source)
            object.__setattr__(self, "_arrays", dict(
                radial_coeffs=np.ascontiguousarray(self.radial_coeffs, dtype=np.float64),
                scaling=float(self.scaling), min_dist=float(self.min_dist),
                max_dist=float(self.max_dist), repulsive=self.repulsive,
                species_coeffs=np.ascontiguousarray(self.species_coeffs, dtype=np.float64),
                moment_coeffs=np.ascontiguousarray(self.moment_coeffs, dtype=np.float64),
                tables=kernel_tables(layout["ang_abc"], layout["basic_mu"],
                                     int(np.shape(self.radial_coeffs)[2]), layout["times"]),
                **layout))
        return self._arrays

    # ---- species ------------------------------------------------------------------
    def types_of(self, atoms, where="structure"):
        """MLIP type index of every atom."""
        if self.species:
            types = self._types_from_table(atoms.numbers)
            if types is not None:
                return types
            index = {s: n for n, s in enumerate(self.species)}
            symbols = atoms.get_chemical_symbols()
            unknown = sorted(set(symbols) - set(index))
            if unknown:
                if "mtp_type" in atoms.arrays and set(symbols) == {"X"}:
                    return self._check_types(np.asarray(atoms.arrays["mtp_type"]), where)
                raise MTPInputError(f"{where}: species {unknown} not in the potential "
                                    f"{self.source} (species {self.species})")
            return np.array([index[s] for s in symbols], dtype=np.int64)
        if "mtp_type" in atoms.arrays:
            return self._check_types(np.asarray(atoms.arrays["mtp_type"]), where)
        distinct = sorted(set(atoms.numbers))
        if self.species_count == 1 and len(distinct) == 1:
            return np.zeros(len(atoms), dtype=np.int64)
        raise MTPInputError(f"{where}: the potential {self.source} does not name its species; "
                            "give them (e.g. --species Cu Au, or MTPotential.load(..., species=[...]))")

    def _types_from_table(self, numbers):
        """MLIP types of atomic numbers by one table look-up; None when a number is not in the
        potential or the species are not element symbols (then `types_of` says which)."""
        table = self._type_table()
        if table is not None and len(numbers) and numbers.min() >= 0 and numbers.max() < len(table):
            types = table[numbers]
            if types.min() >= 0:
                return types
        return None

    def _type_table(self):
        """MLIP type of each atomic number (-1: not in the potential), or None when a species
        name is not an element symbol."""
        key = tuple(self.species)
        cached = getattr(self, "_types_cache", None)
        if cached is None or cached[0] != key:
            from ase.data import atomic_numbers
            table = None
            if all(s in atomic_numbers for s in key):
                table = np.full(119, -1, dtype=np.int64)
                for n, s in enumerate(key):
                    table[atomic_numbers[s]] = n
            cached = (key, table)
            object.__setattr__(self, "_types_cache", cached)
        return cached[1]

    def _check_types(self, types, where):
        if len(types) and (types.min() < 0 or types.max() >= self.species_count):
            raise MTPInputError(f"{where}: MLIP type {int(types.max())} out of range for "
                                f"{self.species_count} species in {self.source}")
        return types.astype(np.int64)

    # ---- evaluation ---------------------------------------------------------------
    def neighbors(self, atoms, where="structure"):
        """CSR neighbour list within max_dist, with the checks of a well-posed structure."""
        return self._checked_neighbors(atoms, where)[:3]

    def _checked_neighbors(self, atoms, where):
        """(offsets, nbr, vec, shortest distance); warns below min_dist."""
        _check_finite(atoms, where)
        try:
            offsets, nbr, vec, shortest = neighbor_csr_shortest(atoms.positions, atoms.cell.array,
                                                                atoms.pbc, self.max_dist)
        except ValueError as exc:
            raise MTPInputError(f"{where}: {exc}") from exc
        _check_overlap(shortest, where)
        self._warn_closer_than_min_dist(shortest, where, stacklevel=5)
        return offsets, nbr, vec, shortest

    def _warn_closer_than_min_dist(self, shortest, where, stacklevel):
        # with RBChebyshev_repuls the repulsive core is the designed behaviour there: no warning
        if shortest < self.min_dist and not self.repulsive:
            if self._contacts is not None:           # inside a run: summed up at its end
                self._contacts.add(shortest, where)
                return
            warnings.warn(f"{where}: atoms {shortest:.3f} Å apart, closer than min_dist = "
                          f"{self.min_dist} Å, {NOT_TRAINED}", stacklevel=stacklevel)

    @contextmanager
    def close_contacts(self, where):
        """Within the block (one run), the structures with atoms closer than min_dist are
        counted, and one warning line at its end says how many, the shortest distance and
        why it matters, instead of a warning per structure. Inside an outer block (or with
        the repulsive core) it adds to the outer one (nothing)."""
        if self._contacts is not None or self.repulsive:
            yield self._contacts
            return
        self._contacts = contacts = CloseContacts(where)
        try:
            yield contacts
        finally:
            self._contacts = None
            if contacts.count:
                warnings.warn(contacts.message(self.min_dist), stacklevel=3)

    def run_kernel(self, types, offsets, nbr, vec, want_forces, want_params, per_atom, n_blocks=None):
        """(site energies, forces, virial, dE/dtheta rows) from the one serial or parallel kernel.

        Small cells run on one thread; rows are per atom, or summed (per block of atoms when
        parallel: sum them) -- see `mtplib.kernels.mtp.mtp_serial`. With RBChebyshev_repuls the
        repulsive core of the pairs closer than min_dist is added (`repulsion_terms`).
        """
        a = self.kernel_arrays()
        args = (types, offsets, nbr, vec, a["radial_coeffs"], a["scaling"], a["min_dist"],
                a["max_dist"], a["repulsive"], a["basic_mu"], a["basic_ang"], a["ang_abc"],
                a["times"], a["mapping"], a["species_coeffs"], a["moment_coeffs"], a["n_moments"],
                want_forces, want_params, per_atom, a["tables"])
        if n_blocks is None and len(types) < ATOMS_PER_THREAD * 2:
            out = mtp_serial(*args)
        else:
            out = mtp_parallel(*args, n_blocks or _default_blocks(len(types)))
        if a["repulsive"]:
            site_energy, forces, virial, _ = out
            repulsion_terms(np.array([0, len(types)], dtype=np.int64), offsets, nbr, vec,
                            a["min_dist"], site_energy, forces, virial[None])
        return out

    def evaluate(self, atoms, where="structure", n_blocks=None):
        """Energy, forces, stress (ASE sign, eV/Å³; None without a 3-D periodic cell) and site energies."""
        return self.evaluate_pass(atoms, where, n_blocks)[0]

    def evaluate_pass(self, atoms, where="structure", n_blocks=None, want_params=False,
                      per_atom=False):
        """`evaluate`'s dict, the dE/dtheta rows of the same kernel pass (see `run_kernel`;
        None unless `want_params`) and the shortest interatomic distance (inf if none)."""
        self.kernel_arrays()          # an untrained potential fails here, before any work
        types = self.types_of(atoms, where)
        offsets, nbr, vec, shortest = self._checked_neighbors(atoms, where)
        site_energy, forces, virial, rows = self.run_kernel(types, offsets, nbr, vec, True,
                                                            want_params, per_atom, n_blocks)
        result = dict(energy=float(site_energy.sum()), forces=forces,
                      stress=_stress(virial, atoms), energies=site_energy)
        return result, (rows if want_params else None), shortest

    # ---- parameters -----------------------------------------------------------------
    def get_parameters(self):
        """theta = [radial_coeffs.ravel(), species_coeffs, moment_coeffs] (MLIP-2's order)."""
        return np.concatenate([np.ravel(self.radial_coeffs), self.species_coeffs, self.moment_coeffs])

    def set_parameters(self, theta):
        theta = np.asarray(theta, dtype=np.float64)
        shape = (self.species_count, self.species_count, self.radial_funcs_count, self.radial_basis_size)
        n_rad = int(np.prod(shape))
        if theta.shape != (self.parameter_count,):
            raise MTPInputError(f"expected {self.parameter_count} parameters, got {theta.shape}")
        self.radial_coeffs = theta[:n_rad].reshape(shape).copy()
        self.species_coeffs = theta[n_rad:n_rad + self.species_count].copy()
        self.moment_coeffs = theta[n_rad + self.species_count:].copy()

    def site_energy_gradients(self, atoms, where="structure", n_blocks=None):
        """Site energies (n_atoms,) and dE_i/dtheta (n_atoms, parameter_count), theta as in get_parameters."""
        types = self.types_of(atoms, where)
        offsets, nbr, vec = self.neighbors(atoms, where)
        site_energy, _, _, grad = self.run_kernel(types, offsets, nbr, vec, False, True, True,
                                                  n_blocks)
        return site_energy, grad

    def evaluate_many(self, images, where="data"):
        """`evaluate` over a list of Atoms, on threads over the structures (`mtplib.threads`);
        returns a list of result dicts. Energies and forces equal `evaluate`'s bit for bit
        (stresses to round-off for structures of 2 * ATOMS_PER_THREAD atoms or more, which
        `evaluate` splits into blocks).

        Structures go in groups of about BATCH_ATOMS atoms: each group's neighbour list and
        pair gradients stay below glibc's mmap threshold, so the memory of one group is
        reused by the next (`mtplib.memory`) and the peak does not grow with the data set."""
        self.kernel_arrays()
        images = list(images)
        results = []
        with self.close_contacts(where):
            for first, last in groups_by_atoms(images, BATCH_ATOMS):
                results += self._evaluate_batch(images[first:last], where, first)
        return results

    def _evaluate_batch(self, images, where, index0):
        """`evaluate_many` of one group; images[n] is structure index0 + n of `where`."""
        types = self._types_many(images, where, index0)
        structures = [(atoms.positions, atoms.cell.array, atoms.pbc) for atoms in images]
        if not all(np.isfinite(positions).all() for positions, _, _ in structures):
            for n, atoms in enumerate(images):
                _check_finite(atoms, f"{where}[{index0 + n}]")
        atom_start, site_energy, forces, virial = self._evaluate_joined(types, structures, where,
                                                                        index0)
        stresses = _stresses(virial, [cell for _, cell, _ in structures],
                             [pbc for _, _, pbc in structures])
        results = []
        for c in range(len(images)):
            a0, a1 = atom_start[c], atom_start[c + 1]
            results.append(dict(energy=float(site_energy[a0:a1].sum()), forces=forces[a0:a1],
                                stress=stresses[c], energies=site_energy[a0:a1]))
        return results

    def _evaluate_joined(self, types, structures, where, index0):
        """(atom_start, site energies, forces, virials (n, 3, 3)) of (positions, cell, pbc)
        structures in one neighbour list and one `mtp_batch` call; types joined."""
        a = self.kernel_arrays()
        try:
            atom_start, offsets, nbr, vec, shortest = neighbor_csr_batch(structures, self.max_dist)
        except StructureError as exc:
            raise MTPInputError(f"{where}[{index0 + exc.index}]: {exc.reason}") from exc
        for n in np.flatnonzero(shortest < OVERLAP):
            _check_overlap(shortest[n], f"{where}[{index0 + n}]")
        for n in np.flatnonzero(shortest < self.min_dist):
            self._warn_closer_than_min_dist(shortest[n], f"{where}[{index0 + n}]", stacklevel=5)
        site_energy, forces, virial = mtp_batch(
            types, offsets, nbr, vec, a["radial_coeffs"], a["scaling"], a["min_dist"],
            a["max_dist"], a["repulsive"], a["basic_mu"], a["basic_ang"], a["ang_abc"], a["times"],
            a["mapping"], a["species_coeffs"], a["moment_coeffs"], a["n_moments"], a["tables"],
            atom_start)
        if a["repulsive"]:
            repulsion_terms(atom_start, offsets, nbr, vec, a["min_dist"], site_energy, forces,
                            virial)
        return atom_start, site_energy, forces, virial

    def evaluate_frames(self, frames, where="data"):
        """Energies (n,), forces (N, 3), stresses (n, 6; NaN rows without a 3-D periodic
        cell) and site energies (N,) of `mtplib.io.frames.Frames`, as joined arrays: the
        arithmetic of `evaluate_many` (the same numbers bit for bit) without an `Atoms` or a
        dict per structure. Structures go in groups of about BATCH_ATOMS atoms; with several
        numba threads a structure of 2 * ATOMS_PER_THREAD atoms per thread or more goes
        alone through `evaluate`'s parallel kernel (its stress then equal to round-off)."""
        with self.close_contacts(where):
            return self._evaluate_frames(frames, where)

    def _evaluate_frames(self, frames, where):
        from .jit import get_num_threads
        self.kernel_arrays()
        types = self._frame_types(frames, where)
        positions = frames.positions
        if not np.isfinite(positions).all():
            bad = int(np.flatnonzero(~np.isfinite(positions).all(axis=1))[0])
            c = int(np.searchsorted(frames.atom_start, bad, side="right") - 1)
            raise MTPInputError(f"{where}[{c}]: non-finite coordinates "
                                f"(atom {bad - frames.atom_start[c]})")
        n, start = len(frames), frames.atom_start
        site_energy = np.empty(len(types))
        forces = np.empty((len(types), 3))
        virial = np.zeros((n, 3, 3))
        structures = frames.structures()
        big = 2 * ATOMS_PER_THREAD * get_num_threads() if get_num_threads() > 1 else np.inf
        first = 0
        while first < n:
            if start[first + 1] - start[first] >= big:
                a0, a1 = start[first], start[first + 1]
                offsets, nbr, vec, shortest = self._checked_neighbors_of(
                    *structures[first], f"{where}[{first}]")
                e, f, v, _ = self.run_kernel(types[a0:a1], offsets, nbr, vec, True, False, False)
                site_energy[a0:a1], forces[a0:a1], virial[first] = e, f, v
                first += 1
                continue
            last = first + 1
            while (last < n and start[last + 1] - start[first] <= BATCH_ATOMS
                   and start[last + 1] - start[last] < big):
                last += 1
            a0, a1 = start[first], start[last]
            _, e, f, v = self._evaluate_joined(types[a0:a1], structures[first:last], where, first)
            site_energy[a0:a1], forces[a0:a1], virial[first:last] = e, f, v
            first = last
        stress = _stress_rows(virial, frames.cells, frames.pbc)
        # numpy's pairwise sum per structure, as `evaluate` sums (reduceat adds in sequence)
        energy = np.array([site_energy[start[c]:start[c + 1]].sum() for c in range(n)])
        return energy, forces, stress, site_energy

    def _checked_neighbors_of(self, positions, cell, pbc, where):
        try:
            offsets, nbr, vec, shortest = neighbor_csr_shortest(positions, cell, pbc, self.max_dist)
        except ValueError as exc:
            raise MTPInputError(f"{where}: {exc}") from exc
        self._warn_closer_than_min_dist(shortest, where, stacklevel=5)
        return offsets, nbr, vec, shortest

    def _frame_types(self, frames, where):
        """MLIP types of every atom of Frames: its own `types` (a `.cfg`), checked against the
        species count, else the atomic numbers through the species table."""
        if frames.types is not None:
            types = np.asarray(frames.types, dtype=np.int64)
            if len(types) and (types.min() < 0 or types.max() >= self.species_count):
                bad = int(np.flatnonzero((types < 0) | (types >= self.species_count))[0])
                c = int(np.searchsorted(frames.atom_start, bad, side="right") - 1)
                raise MTPInputError(f"{where}[{c}]: MLIP type {int(types[bad])} out of range for "
                                    f"{self.species_count} species in {self.source}")
            return types
        numbers = np.asarray(frames.numbers, dtype=np.int64)
        if self.species:
            types = self._types_from_table(numbers) if len(numbers) else numbers
            if types is not None:
                return types
            table = self._type_table()
            known = set(np.flatnonzero(table >= 0)) if table is not None else set()
            bad = int(np.flatnonzero([z not in known for z in numbers])[0])
            c = int(np.searchsorted(frames.atom_start, bad, side="right") - 1)
            from ase.data import chemical_symbols
            name = chemical_symbols[numbers[bad]] if 0 <= numbers[bad] < len(chemical_symbols) else numbers[bad]
            raise MTPInputError(f"{where}[{c}]: species ['{name}'] not in the potential "
                                f"{self.source} (species {self.species})")
        if self.species_count == 1 and len(set(numbers.tolist())) <= 1:
            return np.zeros(len(numbers), dtype=np.int64)
        raise MTPInputError(f"{where}: the potential {self.source} does not name its species; "
                            "give them (e.g. --species Cu Au, or MTPotential.load(..., species=[...]))")

    def _types_many(self, images, where, index0):
        """`types_of` of every atom of every structure, joined: one table look-up when the
        species are element symbols, else (or to name a structure at fault) one by one."""
        if self.species and images:
            numbers = np.concatenate([atoms.numbers for atoms in images])
            types = self._types_from_table(numbers) if len(numbers) else numbers.astype(np.int64)
            if types is not None:
                return types
        return np.concatenate([self.types_of(atoms, f"{where}[{index0 + n}]")
                               for n, atoms in enumerate(images)] or [np.zeros(0, np.int64)])


# Atoms closer than this (Å) sit on top of each other: the radial basis divides by r.
OVERLAP = 1e-6


def _check_overlap(shortest, where):
    if shortest < OVERLAP:
        raise MTPInputError(f"{where}: two atoms {shortest:.3g} Å apart (on top of each other)")


def _check_finite(atoms, where):
    positions = atoms.positions
    if not np.isfinite(positions).all():
        bad = int(np.flatnonzero(~np.isfinite(positions).all(axis=1))[0])
        raise MTPInputError(f"{where}: non-finite coordinates (atom {bad})")


def _stress(virial, atoms):
    """Stress from the virial sum_p vec_p (x) dE/dvec_p: Voigt order xx yy zz yz xz xy,
    symmetrised, over the volume (ASE's sign, eV/Å³); None without a 3-D periodic cell."""
    if not atoms.pbc.all():
        return None
    v = virial
    stress = np.array([v[0, 0], v[1, 1], v[2, 2], 0.5 * (v[1, 2] + v[2, 1]),
                       0.5 * (v[0, 2] + v[2, 0]), 0.5 * (v[0, 1] + v[1, 0])])
    (ax, ay, az), (bx, by, bz), (cx, cy, cz) = atoms.cell.array.tolist()
    volume = ax * (by * cz - bz * cy) - ay * (bx * cz - bz * cx) + az * (bx * cy - by * cx)
    return stress / abs(volume)


def _stress_rows(virials, cells, pbcs):
    """`_stress` of many structures at once (the same arithmetic, elementwise): virials
    (n, 3, 3), cells (n, 3, 3), pbc (n, 3); an (n, 6) array, NaN rows where not 3-D periodic."""
    v = np.asarray(virials)
    cell = np.asarray(cells, dtype=np.float64).reshape(-1, 3, 3)
    (ax, ay, az), (bx, by, bz), (cx, cy, cz) = np.moveaxis(cell, (1, 2), (0, 1))
    volume = ax * (by * cz - bz * cy) - ay * (bx * cz - bz * cx) + az * (bx * cy - by * cx)
    stress = np.stack([v[:, 0, 0], v[:, 1, 1], v[:, 2, 2], 0.5 * (v[:, 1, 2] + v[:, 2, 1]),
                       0.5 * (v[:, 0, 2] + v[:, 2, 0]), 0.5 * (v[:, 0, 1] + v[:, 1, 0])], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):     # cells without volume: NaN
        stress /= np.abs(volume)[:, None]
    stress[~np.all(np.asarray(pbcs, dtype=bool).reshape(-1, 3), axis=1)] = np.nan
    return stress


def _stresses(virials, cells, pbcs):
    """`_stress_rows` as a list: None where not 3-D periodic."""
    stress = _stress_rows(virials, cells, pbcs)
    return [stress[c] if np.all(pbc) else None for c, pbc in enumerate(pbcs)]


def canonical_layout(alpha_index_basic, alpha_index_times, alpha_moment_mapping, moments_count,
                     source="potential"):
    """The basis as the kernels take it: every radial function mu carries ALL angular
    monomials up to its highest degree, in one order shared by all mu (degree, then a, b
    descending, as MLIP-2 lists them), so that per neighbour the basic moments of mu are
    one contiguous block f_mu(r) * monomials[:count_mu]. Intermediate moments, products and
    the scalar mapping are renumbered to match; monomials a file lacks are padding whose
    dE/dM stays zero. For MLIP-2's own files nothing is padded.
    """
    basic = np.asarray(alpha_index_basic, dtype=np.int64).reshape(-1, 4)
    n_basic = len(basic)
    times = np.asarray(alpha_index_times, dtype=np.int64).reshape(-1, 4)
    if len(times) and min(times[:, 3].min(), 10 ** 9) < n_basic:
        raise MTPInputError(f"{source}: alpha_index_times writes into a basic moment")
    n_mu = int(basic[:, 0].max()) + 1 if n_basic else 1
    degree = basic[:, 1:].sum(axis=1)
    max_degree = np.full(n_mu, -1)
    for mu, nu in zip(basic[:, 0], degree):
        max_degree[mu] = max(max_degree[mu], nu)
    top = int(max_degree.max()) if n_basic else 0
    monomials = [(a, b, nu - a - b) for nu in range(top + 1)
                 for a in range(nu, -1, -1) for b in range(nu - a, -1, -1)]
    mono_index = {m: g for g, m in enumerate(monomials)}
    count = np.array([0 if d < 0 else (d + 1) * (d + 2) * (d + 3) // 6 for d in max_degree])
    start = np.concatenate([[0], np.cumsum(count)])
    n_new = int(start[-1])
    new_of_old = np.empty(moments_count, dtype=np.int64)
    for k, (mu, a, b, c) in enumerate(basic):
        new_of_old[k] = start[mu] + mono_index[(a, b, c)]
    new_of_old[n_basic:] = np.arange(n_new, n_new + moments_count - n_basic)
    basic_mu = np.repeat(np.arange(n_mu), count)
    basic_ang = np.concatenate([np.arange(c) for c in count]).astype(np.int64)
    new_times = times.copy()
    if len(times):
        new_times[:, 0] = new_of_old[times[:, 0]]
        new_times[:, 1] = new_of_old[times[:, 1]]
        new_times[:, 3] = new_of_old[times[:, 3]]
    return dict(basic_mu=np.ascontiguousarray(basic_mu, dtype=np.int64),
                basic_ang=np.ascontiguousarray(basic_ang),
                ang_abc=np.ascontiguousarray(np.array(monomials, dtype=np.int64).reshape(-1, 3)),
                times=np.ascontiguousarray(new_times),
                mapping=np.ascontiguousarray(new_of_old[np.asarray(alpha_moment_mapping, dtype=np.int64)]),
                n_moments=int(n_new + moments_count - n_basic))


def load(path, species=None):
    return MTPotential.load(path, species=species)

