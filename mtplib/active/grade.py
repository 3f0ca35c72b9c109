"""The active set and the extrapolation grade (Novikov et al. 2021, sec. 2.3; Podryabinkin 2017).

Rows of the Jacobian of energies with respect to all parameters theta:

- configuration mode: one row per configuration, b = sum_i dE_i/dtheta / N;
- neighbourhood mode: one row per atom, b_i = dE_i/dtheta.

The two modes are the defaults of MLIP-3's selection weights (`SelectionWeights`), which
may add, per configuration, the rows of the forces (3N) and of the stress (9), as in
MLIP's `MaxvolSelection::PrepareMatrix`.

The active set is the maxvol submatrix A of the training set's rows. The extrapolation
grade of a configuration is gamma = max over its rows and columns of |b A^-1|: gamma <= 1
means interpolation, gamma > 1 extrapolation. The state (A, A^-1, members) is saved as
`POT.als.npz` (named for the potential, in the folder the caller chooses: the CLI puts it
beside its output, never beside an input) with a fingerprint of the potential, so that a
state cannot be used with a potential it was not built for.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..kernels.mtp import mtp_parallel, mtp_serial
from ..kernels.training import linear_design
from ..neighbors import neighbor_csr_shortest
from ..potential import ATOMS_PER_THREAD, MTPInputError, MTPotential, _default_blocks
from .maxvol import VIRTUAL, MaxvolState, maxvol

MODES = ("configuration", "neighborhood")
STATE_VERSION = 1
FD_STEP = 1e-5          # central-difference step over a radial coefficient, relative to 1 + |c|


class ActiveSetError(MTPInputError):
    """A state file that does not belong to the potential, or a malformed one."""


def check_mode(mode):
    mode = {"neighbourhood": "neighborhood", "nbh": "neighborhood", "cfg": "configuration"}.get(mode, mode)
    if mode not in MODES:
        raise ActiveSetError(f"unknown active-set mode {mode!r}; use one of {MODES}")
    return mode


WEIGHT_NAMES = ("energy", "forces", "stress", "site_energy")


@dataclass(frozen=True)
class SelectionWeights:
    """Weights of the Jacobian rows that selection and grading see (MLIP-3's select options).

    Per configuration of N atoms, in MLIP's order (`MaxvolSelection::PrepareMatrix`, the
    default "vibrations" weighting):

    - ``site_energy`` (MV_nbh_cmpnts_weight, ``--site-en-weight``): N rows w dE_i/dtheta;
    - ``energy`` (MV_ene_cmpnts_weight, ``--energy-weight``): one row w dE/dtheta / N;
    - ``forces`` (MV_frc_cmpnts_weight, ``--force-weight``): 3N rows w dF_ja/dtheta (atom-major);
    - ``stress`` (MV_str_cmpnts_weight, ``--stress-weight``): 9 rows w dW_ab/dtheta / N, W the
      symmetrised virial (stress x volume, eV), row-major.

    A zero weight leaves its rows out. Defaults: configuration mode = energy 1, the rest 0
    (MLIP's default); neighbourhood mode = site energy 1, the rest 0. Those two give exactly
    the rows of the plain modes. The mode of a set of weights is "neighborhood" when it has
    site-energy rows, else "configuration". (MLIP uses the site-energy weight only as on/off;
    here it also scales the rows, which matters only beside other rows.)

    Force and stress rows cost more than energy rows: the species and moment columns come
    exactly from the linear design (`kernels.training.linear_design`), the radial columns
    from central finite differences of the kernel, two force passes per radial coefficient
    (forces and virial are polynomials of high degree in the radial coefficients; no cheap
    closed form). They are opt-in.
    """

    energy: float = 1.0
    forces: float = 0.0
    stress: float = 0.0
    site_energy: float = 0.0

    @classmethod
    def for_mode(cls, mode):
        """The default weights of an active-set mode."""
        if check_mode(mode) == "neighborhood":
            return cls(energy=0.0, site_energy=1.0)
        return cls()

    @classmethod
    def of(cls, weights=None, mode="configuration", where="selection weights"):
        """Weights from None (the mode's default), a dict of some of WEIGHT_NAMES (the rest
        from the mode's default), an array in WEIGHT_NAMES order, or a SelectionWeights;
        checked."""
        if weights is None:
            return cls.for_mode(mode)
        if isinstance(weights, cls):
            out = weights
        elif isinstance(weights, dict):
            unknown = sorted(set(weights) - set(WEIGHT_NAMES))
            if unknown:
                raise ActiveSetError(f"{where}: unknown weights {unknown}; use {list(WEIGHT_NAMES)}")
            base = cls.for_mode(mode)
            out = cls(**{k: float(weights[k]) if weights.get(k) is not None else getattr(base, k)
                         for k in WEIGHT_NAMES})
        else:
            values = np.asarray(weights, dtype=np.float64).ravel()
            if values.shape != (len(WEIGHT_NAMES),):
                raise ActiveSetError(f"{where}: expected {len(WEIGHT_NAMES)} weights "
                                     f"{list(WEIGHT_NAMES)}, got {values.shape}")
            out = cls(*(float(v) for v in values))
        return out.checked(where)

    def checked(self, where="selection weights"):
        values = self.as_array()
        if not np.isfinite(values).all() or (values < 0).any():
            bad = [f"{k}={v:g}" for k, v in zip(WEIGHT_NAMES, values) if not (v >= 0)]
            raise ActiveSetError(f"{where}: weights must be finite and non-negative ({', '.join(bad)})")
        if not (values > 0).any():
            raise ActiveSetError(f"{where}: all selection weights are zero; give at least one of "
                                 f"{', '.join(WEIGHT_NAMES)} > 0")
        return self

    def as_array(self):
        return np.array([self.energy, self.forces, self.stress, self.site_energy], dtype=np.float64)

    def as_dict(self):
        return dict(zip(WEIGHT_NAMES, self.as_array().tolist()))

    @property
    def mode(self):
        return "neighborhood" if self.site_energy != 0 else "configuration"

    @property
    def is_mode_default(self):
        return self == SelectionWeights.for_mode(self.mode)

    @property
    def needs_derivatives(self):
        """True when force or stress rows are asked (finite-difference passes)."""
        return self.forces != 0 or self.stress != 0

    def __str__(self):
        return ", ".join(f"{k} {v:g}" for k, v in self.as_dict().items() if v != 0)


def potential_fingerprint(potential):
    """SHA-256 of the parameters and the basis: equal only for the same potential."""
    h = hashlib.sha256()
    for name in ("species_count", "min_dist", "max_dist", "radial_basis_size", "radial_funcs_count",
                 "alpha_moments_count", "scaling"):
        h.update(f"{name}={float(getattr(potential, name))!r};".encode())
    if potential.repulsive:         # the plain basis keeps the fingerprints it always had
        h.update(b"radial_basis_type=RBChebyshev_repuls;")
    for name in ("alpha_index_basic", "alpha_index_times", "alpha_moment_mapping"):
        h.update(np.ascontiguousarray(getattr(potential, name), dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(potential.get_parameters(), dtype=np.float64).tobytes())
    h.update(repr(list(potential.species or [])).encode())
    return h.hexdigest()


def state_path_for(potential_path, beside=None):
    """`POT.als.npz`: in the folder of the file `beside` (an output), else beside `POT.mtp`."""
    name = Path(potential_path).with_suffix(".als.npz").name
    return (Path(beside).parent if beside is not None else Path(potential_path).parent) / name


def _forces_virial(potential, a, types, offsets, nbr, vec, radial_coeffs):
    """Forces and virial of the kernel at other radial coefficients (the repulsive core of
    RBChebyshev_repuls does not depend on the parameters and is left out)."""
    args = (types, offsets, nbr, vec, radial_coeffs, a["scaling"], a["min_dist"], a["max_dist"],
            a["repulsive"], a["basic_mu"], a["basic_ang"], a["ang_abc"], a["times"], a["mapping"],
            a["species_coeffs"], a["moment_coeffs"], a["n_moments"], True, False, False,
            a["tables"])
    if len(types) < ATOMS_PER_THREAD * 2:
        out = mtp_serial(*args)
    else:
        out = mtp_parallel(*args, _default_blocks(len(types)))
    return out[1], out[2]


def force_stress_jacobian(potential, types, offsets, nbr, vec, fd_step=FD_STEP):
    """d(forces)/dtheta (3N, n_params; atom-major) and d(symmetrised virial)/dtheta (9,
    n_params; row-major), theta in `get_parameters` order.

    Species and moment columns: exact, from the linear design (forces and virial are linear
    in them). Radial columns: central differences of the kernel's forces and virial, step
    `fd_step` (1 + |c|), two kernel passes per radial coefficient."""
    a = potential.kernel_arrays()
    n = len(types)
    c = a["radial_coeffs"]
    n_rad = c.size
    X = linear_design(types, offsets, nbr, vec, c, a["scaling"], a["min_dist"], a["max_dist"],
                      a["repulsive"], a["basic_mu"], a["basic_ang"], a["ang_abc"], a["times"],
                      a["mapping"], a["n_moments"], True)
    J = np.empty((3 * n + 9, n_rad + X.shape[1]))
    J[:, n_rad:] = X[1:]                  # F (3N), then W with row 3b+a = W[a, b]
    flat = c.ravel()
    for j in range(n_rad):
        h = fd_step * (1.0 + abs(flat[j]))
        up, down = flat.copy(), flat.copy()
        up[j] += h
        down[j] -= h
        f_up, w_up = _forces_virial(potential, a, types, offsets, nbr, vec, up.reshape(c.shape))
        f_dn, w_dn = _forces_virial(potential, a, types, offsets, nbr, vec, down.reshape(c.shape))
        step = up[j] - down[j]
        J[:3 * n, j] = (f_up - f_dn).ravel() / step
        J[3 * n:, j] = (w_up - w_dn).T.ravel() / step
    W = J[3 * n:].reshape(3, 3, -1)
    J[3 * n:] = (0.5 * (W + W.transpose(1, 0, 2))).reshape(9, -1)
    return J[:3 * n], J[3 * n:]


def selection_rows(potential, weights, types, offsets, nbr, vec, kernel_rows):
    """The weighted rows of one configuration and the atom of each row (-1: the energy and
    stress rows), in MLIP's order: site energies, energy, forces, stress.

    `kernel_rows` are the dE/dtheta rows of the kernel pass: per atom when
    `weights.site_energy` is nonzero, else summed (per block)."""
    n = len(types)
    parts, atoms = [], []
    if weights.site_energy != 0:
        parts.append(kernel_rows if weights.site_energy == 1 else weights.site_energy * kernel_rows)
        atoms.append(np.arange(n))
    if weights.energy != 0:
        row = kernel_rows.sum(axis=0, keepdims=True) / max(n, 1)
        parts.append(row if weights.energy == 1 else weights.energy * row)
        atoms.append(np.array([-1]))
    if weights.needs_derivatives:
        dF, dW = force_stress_jacobian(potential, types, offsets, nbr, vec)
        if weights.forces != 0:
            parts.append(weights.forces * dF)
            atoms.append(np.repeat(np.arange(n), 3))
        if weights.stress != 0:
            parts.append(weights.stress * dW / max(n, 1))
            atoms.append(np.full(9, -1))
    return np.vstack(parts), np.concatenate(atoms).astype(np.int64)


def evaluate_with_gradients(potential, atoms, per_atom=False, where="structure", n_blocks=None,
                            gradients=True, weights=None):
    """`MTPotential.evaluate` plus dE/dtheta in the same pass.

    Returns the dict of `evaluate` (identical energy, forces, stress and site energies) with
    ``rows``: (n_atoms, n_params) dE_i/dtheta if `per_atom`, else (1, n_params) sum_i dE_i/dtheta / N
    (None when not `gradients`: then the plain kernel runs), and ``min_distance``, the
    shortest interatomic distance within max_dist (inf if none).

    With `weights` (a `SelectionWeights`; `per_atom` is then ignored) the rows are
    `selection_rows`, and ``row_atoms`` says the atom of each (-1: configuration-wide).
    """
    if weights is not None and gradients:
        res, rows, shortest = potential.evaluate_pass(atoms, where, n_blocks, True,
                                                      weights.site_energy != 0)
        offsets = nbr = vec = None
        types = potential.types_of(atoms, where)
        if weights.needs_derivatives:
            offsets, nbr, vec, _ = neighbor_csr_shortest(atoms.positions, atoms.cell.array,
                                                         atoms.pbc, potential.max_dist)
        rows, row_atoms = selection_rows(potential, weights, types, offsets, nbr, vec, rows)
        res.update(rows=rows, row_atoms=row_atoms, min_distance=float(shortest))
        return res
    # the same compiled kernel pass as MTPotential.evaluate, with the parameter rows switched on
    res, rows, shortest = potential.evaluate_pass(atoms, where, n_blocks, gradients, per_atom)
    if rows is not None and not per_atom:
        rows = rows.sum(axis=0, keepdims=True) / max(len(atoms), 1)
    res.update(rows=rows, min_distance=float(shortest))
    return res


def jacobian_rows(potential, images, mode="configuration", where="training set", weights=None):
    """Stacked rows of `images` and their owners (n_rows, 2): (configuration, atom or -1).

    `weights` (a `SelectionWeights`, default: the mode's) choose the rows; with them `mode`
    is the weights' mode."""
    weights = SelectionWeights.of(weights, mode)
    mode = weights.mode
    plain = weights.is_mode_default
    per_atom = mode == "neighborhood"
    rows, owners = [], []
    with potential.close_contacts(where):
        for k, atoms in enumerate(images):
            res = evaluate_with_gradients(potential, atoms, per_atom, where=f"{where}[{k}]",
                                          weights=None if plain else weights)
            rows.append(res["rows"])
            if plain:
                atom_ids = np.arange(len(atoms)) if per_atom else np.array([-1])
            else:
                atom_ids = res["row_atoms"]
            owners.append(np.column_stack([np.full(len(atom_ids), k), atom_ids]))
    if not rows:
        return np.zeros((0, potential.parameter_count)), np.zeros((0, 2), dtype=np.int64)
    return np.vstack(rows), np.vstack(owners).astype(np.int64)


def gamma_of(per_row, row_atoms, n_atoms):
    """gamma (max over rows) and gamma per atom (max over the rows of that atom: its
    site-energy row and its 3 force rows; None when no row belongs to one atom)."""
    gamma = float(per_row.max()) if len(per_row) else 0.0
    mine = row_atoms >= 0
    if not mine.any():
        return gamma, None
    per_atom = np.zeros(n_atoms)
    np.maximum.at(per_atom, row_atoms[mine], per_row[mine])
    return gamma, per_atom


@dataclass
class ActiveSet:
    """The maxvol active set of a potential: A, A^-1 and which rows they are."""

    potential: MTPotential
    mode: str
    A: np.ndarray
    Ainv: np.ndarray
    members: np.ndarray            # (m, 2): (training configuration, atom or -1); (-1, -1) virtual
    fingerprint: str
    training_source: str = "<memory>"
    path: str = "<memory>"
    weights: SelectionWeights = None   # None: the mode's default

    def __post_init__(self):
        self.weights = SelectionWeights.of(self.weights, self.mode)
        if self.weights.mode != check_mode(self.mode):
            raise ActiveSetError(f"{self.path}: active set in {self.mode} mode with selection "
                                 f"weights ({self.weights}) of {self.weights.mode} mode")

    # ---- construction --------------------------------------------------------------
    @classmethod
    def from_training(cls, potential, images, mode="configuration", tol=1e-7, regularization=1e-5,
                      where="training set", weights=None):
        """Maxvol over the Jacobian rows of `images` (a list of Atoms).

        `weights` (`SelectionWeights`, a dict or None: the mode's default) choose the rows;
        given, they set the mode (neighbourhood when they have site-energy rows)."""
        weights = SelectionWeights.of(weights, mode, where=f"{where}: selection weights")
        mode = weights.mode
        rows, owners = jacobian_rows(potential, images, mode, where=where, weights=weights)
        if weights.is_mode_default:
            what = "" if mode == "configuration" else f", {len(rows)} neighbourhoods"
        else:
            what = f", {len(rows)} rows of {weights}"
        state = maxvol(rows, tol=tol, regularization=regularization,
                       where=f"{where} ({len(images)} configurations{what})")
        members = np.full((state.size, 2), -1, dtype=np.int64)
        real = state.labels != VIRTUAL
        members[real] = owners[state.labels[real]]
        return cls(potential=potential, mode=mode, A=state.A, Ainv=state.Ainv, members=members,
                   fingerprint=potential_fingerprint(potential), training_source=str(where),
                   weights=weights)

    @property
    def size(self):
        return self.A.shape[0]

    @property
    def n_virtual(self):
        return int((self.members[:, 0] == VIRTUAL).sum())

    @property
    def weights_note(self):
        """", selection weights ..." when they are not the mode's default, else ""."""
        return "" if self.weights.is_mode_default else f", selection weights: {self.weights}"

    @property
    def member_configurations(self):
        """Sorted indices of the training configurations with a row in the active set."""
        return np.unique(self.members[self.members[:, 0] >= 0, 0])

    def maxvol_state(self):
        labels = np.where(self.members[:, 0] >= 0, np.arange(self.size), VIRTUAL)
        return MaxvolState(A=self.A.copy(), Ainv=self.Ainv.copy(), labels=labels)

    # ---- files -------------------------------------------------------------------
    def save(self, path):
        """Write the state; the selection weights only when they are not the mode's default
        (so a default state is the file it always was, and such a file loads as the default)."""
        path = Path(path)
        extra = {} if self.weights.is_mode_default else {"selection_weights": self.weights.as_array()}
        with open(path, "wb") as fh:
            np.savez(fh, version=STATE_VERSION, mode=self.mode, A=self.A, Ainv=self.Ainv,
                     members=self.members, fingerprint=self.fingerprint,
                     potential_source=str(self.potential.source),
                     training_source=self.training_source, **extra)
        self.path = str(path)

    @classmethod
    def load(cls, path, potential):
        """Read a state file and check that it was built for `potential`."""
        path = Path(path)
        if not path.exists():
            raise ActiveSetError(f"{path}: no such active-set state file (build it with "
                                 f"`mtplib grade POT TRAIN ...`, which writes {path.name})")
        try:
            with np.load(path, allow_pickle=False) as data:
                fields = {k: data[k] for k in data.files}
        except Exception as exc:   # zip or format errors
            raise ActiveSetError(f"{path}: not an active-set state file ({exc})") from exc
        missing = {"mode", "A", "Ainv", "members", "fingerprint"} - set(fields)
        if missing:
            raise ActiveSetError(f"{path}: not an active-set state file (missing {sorted(missing)})")
        recorded = str(fields["fingerprint"])
        actual = potential_fingerprint(potential)
        if recorded != actual:
            built_for = str(fields.get("potential_source", "an unknown potential"))
            raise ActiveSetError(
                f"{path}: this active-set state was built for the potential {built_for} "
                f"(fingerprint {recorded[:12]}), not for {potential.source} (fingerprint "
                f"{actual[:12]}); rebuild it with `mtplib grade {potential.source} TRAIN ...`")
        if fields["A"].shape != (potential.parameter_count,) * 2:
            raise ActiveSetError(f"{path}: A has shape {fields['A'].shape}, expected "
                                 f"{(potential.parameter_count,) * 2} for {potential.source}")
        mode = check_mode(str(fields["mode"]))
        weights = SelectionWeights.of(fields.get("selection_weights"), mode,
                                      where=f"{path}: selection_weights")
        if weights.mode != mode:
            raise ActiveSetError(f"{path}: selection_weights ({weights}) are not of its {mode} mode")
        return cls(potential=potential, mode=mode, A=fields["A"],
                   Ainv=fields["Ainv"], members=fields["members"].astype(np.int64),
                   fingerprint=recorded, training_source=str(fields.get("training_source", "")),
                   path=str(path), weights=weights)

    def check_potential(self):
        """Raise if the potential's parameters changed since the active set was built."""
        actual = potential_fingerprint(self.potential)
        if actual != self.fingerprint:
            raise ActiveSetError(f"{self.path}: the potential {self.potential.source} changed "
                                 "since its active set was built; rebuild the active set")

    # ---- grading -------------------------------------------------------------------
    def grade_rows(self, rows):
        """gamma of each row: max_j |(b A^-1)_j|, O(m^2) per row with the stored A^-1."""
        rows = np.atleast_2d(rows)
        return np.abs(rows @ self.Ainv).max(axis=1)

    def evaluate(self, atoms, where="structure"):
        """Energy, forces, stress, site energies AND the grade, from one pass of the kernels.

        Adds ``gamma`` (max over rows) and, in neighbourhood mode, ``gamma_atoms`` (n,).
        With force or stress weights, the rows of `selection_rows` (two more kernel passes
        per radial coefficient), and ``gamma_atoms`` wherever rows belong to atoms (site
        energy or force rows: `gamma_of`)."""
        if not self.weights.is_mode_default:
            res = evaluate_with_gradients(self.potential, atoms, where=where, weights=self.weights)
            per_row = self.grade_rows(res.pop("rows"))
            res["gamma"], gamma_atoms = gamma_of(per_row, res.pop("row_atoms"), len(atoms))
            if gamma_atoms is not None:
                res["gamma_atoms"] = gamma_atoms
            return res
        res = evaluate_with_gradients(self.potential, atoms, self.mode == "neighborhood", where)
        per_row = self.grade_rows(res.pop("rows"))
        res["gamma"] = float(per_row.max()) if len(per_row) else 0.0
        if self.mode == "neighborhood":
            res["gamma_atoms"] = per_row
        return res

    def grade(self, atoms, where="structure"):
        """gamma of a configuration; stored in atoms.info["gamma"] and, per atom in
        neighbourhood mode, atoms.arrays["gamma"]."""
        res = self.evaluate(atoms, where)
        atoms.info["gamma"] = res["gamma"]
        if "gamma_atoms" in res:
            atoms.arrays["gamma"] = res["gamma_atoms"]
        return res["gamma"]

    def grade_many(self, images, where="data"):
        with self.potential.close_contacts(where):
            return np.array([self.grade(atoms, where=f"{where}[{k}]")
                             for k, atoms in enumerate(images)])


def load_or_build(potential, state=None, training=None, mode="configuration", log=None,
                  weights=None):
    """The active set from the file `state` if present, else built from `training` (a list
    of Atoms or a path) with `weights` (default: the mode's) and saved to `state` (not
    saved when `state` is None)."""
    from ..io import read_dataset
    if state is not None and Path(state).exists():
        aset = ActiveSet.load(state, potential)
        if log:
            log(f"{state}: active set of {aset.size} rows ({aset.mode} mode, "
                f"{aset.n_virtual} virtual{aset.weights_note}) built from {aset.training_source}")
        return aset
    if training is None:
        raise ActiveSetError(f"{state}: no active-set state file and no training set to build it from")
    where = "training set"
    if isinstance(training, (str, Path)):
        where = str(training)
        training = read_dataset(training, species=potential.species)
    aset = ActiveSet.from_training(potential, training, mode=mode, where=where, weights=weights)
    if state is not None:
        aset.save(state)
        if log:
            log(f"{state}: active set of {aset.size} rows from {where} ({aset.mode} mode, "
                f"{aset.n_virtual} virtual rows{aset.weights_note})")
    return aset
