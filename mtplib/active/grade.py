"""The active set and the extrapolation grade (Novikov et al. 2021, sec. 2.3; Podryabinkin 2017).

Rows of the Jacobian of energies with respect to all parameters theta:

- configuration mode: one row per configuration, b = sum_i dE_i/dtheta / N;
- neighbourhood mode: one row per atom, b_i = dE_i/dtheta.

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

from ..potential import MTPInputError, MTPotential
from .maxvol import VIRTUAL, MaxvolState, maxvol

MODES = ("configuration", "neighborhood")
STATE_VERSION = 1


class ActiveSetError(MTPInputError):
    """A state file that does not belong to the potential, or a malformed one."""


def check_mode(mode):
    mode = {"neighbourhood": "neighborhood", "nbh": "neighborhood", "cfg": "configuration"}.get(mode, mode)
    if mode not in MODES:
        raise ActiveSetError(f"unknown active-set mode {mode!r}; use one of {MODES}")
    return mode


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


def evaluate_with_gradients(potential, atoms, per_atom=False, where="structure", n_blocks=None,
                            gradients=True):
    """`MTPotential.evaluate` plus dE/dtheta in the same pass.

    Returns the dict of `evaluate` (identical energy, forces, stress and site energies) with
    ``rows``: (n_atoms, n_params) dE_i/dtheta if `per_atom`, else (1, n_params) sum_i dE_i/dtheta / N
    (None when not `gradients`: then the plain kernel runs), and ``min_distance``, the
    shortest interatomic distance within max_dist (inf if none).
    """
    # the same compiled kernel pass as MTPotential.evaluate, with the parameter rows switched on
    res, rows, shortest = potential.evaluate_pass(atoms, where, n_blocks, gradients, per_atom)
    if rows is not None and not per_atom:
        rows = rows.sum(axis=0, keepdims=True) / max(len(atoms), 1)
    res.update(rows=rows, min_distance=float(shortest))
    return res


def jacobian_rows(potential, images, mode="configuration", where="training set"):
    """Stacked rows of `images` and their owners (n_rows, 2): (configuration, atom or -1)."""
    mode = check_mode(mode)
    per_atom = mode == "neighborhood"
    rows, owners = [], []
    with potential.close_contacts(where):
        for k, atoms in enumerate(images):
            res = evaluate_with_gradients(potential, atoms, per_atom, where=f"{where}[{k}]")
            rows.append(res["rows"])
            atom_ids = np.arange(len(atoms)) if per_atom else np.array([-1])
            owners.append(np.column_stack([np.full(len(atom_ids), k), atom_ids]))
    if not rows:
        return np.zeros((0, potential.parameter_count)), np.zeros((0, 2), dtype=np.int64)
    return np.vstack(rows), np.vstack(owners).astype(np.int64)


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

    # ---- construction --------------------------------------------------------------
    @classmethod
    def from_training(cls, potential, images, mode="configuration", tol=1e-7, regularization=1e-5,
                      where="training set"):
        """Maxvol over the Jacobian rows of `images` (a list of Atoms)."""
        mode = check_mode(mode)
        rows, owners = jacobian_rows(potential, images, mode, where=where)
        what = "" if mode == "configuration" else f", {len(rows)} neighbourhoods"
        state = maxvol(rows, tol=tol, regularization=regularization,
                       where=f"{where} ({len(images)} configurations{what})")
        members = np.full((state.size, 2), -1, dtype=np.int64)
        real = state.labels != VIRTUAL
        members[real] = owners[state.labels[real]]
        return cls(potential=potential, mode=mode, A=state.A, Ainv=state.Ainv, members=members,
                   fingerprint=potential_fingerprint(potential), training_source=str(where))

    @property
    def size(self):
        return self.A.shape[0]

    @property
    def n_virtual(self):
        return int((self.members[:, 0] == VIRTUAL).sum())

    @property
    def member_configurations(self):
        """Sorted indices of the training configurations with a row in the active set."""
        return np.unique(self.members[self.members[:, 0] >= 0, 0])

    def maxvol_state(self):
        labels = np.where(self.members[:, 0] >= 0, np.arange(self.size), VIRTUAL)
        return MaxvolState(A=self.A.copy(), Ainv=self.Ainv.copy(), labels=labels)

    # ---- files -------------------------------------------------------------------
    def save(self, path):
        path = Path(path)
        with open(path, "wb") as fh:
            np.savez(fh, version=STATE_VERSION, mode=self.mode, A=self.A, Ainv=self.Ainv,
                     members=self.members, fingerprint=self.fingerprint,
                     potential_source=str(self.potential.source),
                     training_source=self.training_source)
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
        return cls(potential=potential, mode=check_mode(str(fields["mode"])), A=fields["A"],
                   Ainv=fields["Ainv"], members=fields["members"].astype(np.int64),
                   fingerprint=recorded, training_source=str(fields.get("training_source", "")),
                   path=str(path))

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

        Adds ``gamma`` (max over rows) and, in neighbourhood mode, ``gamma_atoms`` (n,)."""
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


def load_or_build(potential, state=None, training=None, mode="configuration", log=None):
    """The active set from the file `state` if present, else built from `training` (a list
    of Atoms or a path) and saved to `state` (not saved when `state` is None)."""
    from ..io import read_dataset
    if state is not None and Path(state).exists():
        aset = ActiveSet.load(state, potential)
        if log:
            log(f"{state}: active set of {aset.size} rows ({aset.mode} mode, "
                f"{aset.n_virtual} virtual) built from {aset.training_source}")
        return aset
    if training is None:
        raise ActiveSetError(f"{state}: no active-set state file and no training set to build it from")
    where = "training set"
    if isinstance(training, (str, Path)):
        where = str(training)
        training = read_dataset(training, species=potential.species)
    aset = ActiveSet.from_training(potential, training, mode=mode, where=where)
    if state is not None:
        aset.save(state)
        if log:
            log(f"{state}: active set of {aset.size} rows from {where} ({aset.mode} mode, "
                f"{aset.n_virtual} virtual rows)")
    return aset
