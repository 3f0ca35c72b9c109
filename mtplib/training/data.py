"""Training data: labels, per-size weights (eqs. 7, 11-12 of Novikov et al. 2021), checks, split.

Per-size scalings s(N) follow MLIP-2's trainer (`MTPR_trainer::AddToSLAE` and
`NonLinearRegression::AddLoss` in MLIP-2's `src/`): the energy residual is the total energy,
the stress residual is the virial W = stress * volume (eV), both 3x3 (9 components):

    weighting     s_e      s_f     s_s
    vibrations    1/N      1       1/N      (MLIP-2's default)
    structures    1/N^2    1/N     1/N^2
    molecules     1        1       1
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..neighbors import StructureError, groups_by_atoms, neighbor_csr_batch
from ..potential import MTPInputError
from ..potential import _check_finite as check_finite
from ..kernels.mtp import repulsion_terms

SCALINGS = {
    "vibrations": (1, 0, 1),    # powers of 1/N for energy, forces, stress
    "structures": (2, 1, 2),
    "molecules": (0, 0, 0),
}


class TrainingDataError(ValueError):
    """Bad training data: missing labels, unknown species, nothing left to train on."""


@dataclass
class TrainingConfig:
    """One configuration as the kernels need it, with its targets and loss weights."""

    label: str
    types: np.ndarray
    offsets: np.ndarray
    nbr: np.ndarray
    vec: np.ndarray
    energy: float
    forces: np.ndarray | None        # (N, 3)
    virial: np.ndarray | None        # (3, 3), stress * volume, ASE sign
    w_energy: float                  # w_cfg w_e s_e(N)
    w_forces: float
    w_stress: float

    @property
    def n_atoms(self):
        return len(self.types)


def labels_of(atoms):
    """(energy, forces, stress) from the attached calculator's results (None when absent)."""
    results = getattr(atoms.calc, "results", None) or {}
    energy = results.get("energy", results.get("free_energy"))
    forces = results.get("forces")
    stress = results.get("stress")
    return energy, forces, stress


def _stress_3x3(stress):
    s = np.asarray(stress, dtype=float)
    if s.shape == (3, 3):
        return s
    s = s.reshape(6)
    return np.array([[s[0], s[5], s[4]], [s[5], s[1], s[3]], [s[4], s[3], s[2]]])


def config_weights(n_atoms, weights, scaling, cfg_weight=1.0):
    """w_cfg * (w_e s_e(N), w_f s_f(N), w_s s_s(N)), eqs. 7, 11-12."""
    if scaling not in SCALINGS:
        raise TrainingDataError(f"unknown scaling {scaling!r}; use one of {sorted(SCALINGS)}")
    pe, pf, ps = SCALINGS[scaling]
    w_e, w_f, w_s = weights
    n = float(n_atoms)
    return (cfg_weight * w_e / n ** pe, cfg_weight * w_f / n ** pf, cfg_weight * w_s / n ** ps)


def image_labels(images, name="train"):
    """Labels naming each configuration: atoms.info['source'] when set, else name[i]."""
    return [str(a.info.get("source", f"{name}[{n}]")) for n, a in enumerate(images)]


def apply_forces_cap(images, forces_cap, labels=None, log=None):
    """Drop configurations whose largest reference |F| exceeds forces_cap; (kept, labels, n_dropped)."""
    labels = labels or image_labels(images)
    if forces_cap is None:
        return list(images), list(labels), 0
    kept, kept_labels = [], []
    for atoms, label in zip(images, labels):
        forces = labels_of(atoms)[1]
        if forces is not None and len(forces) and \
                float(np.linalg.norm(np.asarray(forces), axis=1).max()) > forces_cap:
            continue
        kept.append(atoms)
        kept_labels.append(label)
    dropped = len(images) - len(kept)
    if log is not None:
        log(f"forces_cap {forces_cap} eV/Å: dropped {dropped} of {len(images)} configurations")
    if not kept:
        raise TrainingDataError(f"no training configurations left after forces_cap = {forces_cap} "
                                f"eV/Å dropped all {len(images)}")
    return kept, kept_labels, dropped


NEIGHBOR_GROUP_ATOMS = 1 << 16       # structures per batched neighbour search, in atoms


def neighbor_lists(images, potential, labels):
    """Yield (offsets, nbr, vec) of every image, as `potential.neighbors` gives them (the same
    pairs in the same order, the same checks and messages), found by batched searches of
    about NEIGHBOR_GROUP_ATOMS atoms (`neighbor_csr_batch`, the search `evaluate_many` uses:
    a training run compiles one neighbour kernel, not two)."""
    for first, last in groups_by_atoms(images, NEIGHBOR_GROUP_ATOMS):
        group = images[first:last]
        for atoms, label in zip(group, labels[first:last]):
            check_finite(atoms, label)
        try:
            start, offsets, nbr, vec, _ = neighbor_csr_batch(
                [(a.positions, a.cell.array, a.pbc) for a in group], potential.max_dist)
        except StructureError as exc:
            raise MTPInputError(f"{labels[first + exc.index]}: {exc.reason}") from exc
        for c in range(len(group)):
            a0, a1 = start[c], start[c + 1]
            p0, p1 = offsets[a0], offsets[a1]
            yield offsets[a0:a1 + 1] - p0, nbr[p0:p1] - a0, vec[p0:p1]


def _without_repulsion(potential, offsets, nbr, vec, energy, forces, virial):
    """Targets less the fixed repulsive core of RBChebyshev_repuls (no parameters of its
    own), so that every training path fits the MTP part to what the core leaves."""
    n_atoms = len(offsets) - 1
    site = np.zeros(n_atoms)
    rep_forces = np.zeros((n_atoms, 3))
    rep_virial = np.zeros((1, 3, 3))
    if not repulsion_terms(np.array([0, n_atoms], dtype=np.int64), offsets, nbr, vec,
                           float(potential.min_dist), site, rep_forces, rep_virial):
        return energy, forces, virial
    return (None if energy is None else energy - float(site.sum()),
            None if forces is None else forces - rep_forces,
            None if virial is None else virial - rep_virial[0])


def prepare(images, potential, weights=(1.0, 0.01, 0.001), scaling="vibrations", labels=None):
    """TrainingConfig for every image, with the checks of section 'Data' of the trainer.

    With RBChebyshev_repuls the targets are those less the repulsive core
    (`_without_repulsion`)."""
    labels = labels or image_labels(images)
    if not len(images):
        raise TrainingDataError("the training set is empty")
    w_e, w_f, w_s = (float(w) for w in weights)
    out = []
    lists = neighbor_lists(images, potential, labels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # closer than min_dist: allowed in training data
        for atoms, label in zip(images, labels):
            energy, forces, stress = labels_of(atoms)
            if energy is None and w_e > 0:
                raise TrainingDataError(f"{label}: no energy (energy weight {w_e} > 0)")
            if forces is None and w_f > 0:
                raise TrainingDataError(f"{label}: no forces while the force weight is {w_f}; "
                                        "give forces or set the force weight to 0")
            periodic = bool(np.all(atoms.pbc))
            if stress is None and w_s > 0 and periodic:
                raise TrainingDataError(f"{label}: no stress while the stress weight is {w_s}; "
                                        "give stresses or set the stress weight to 0")
            try:
                types = potential.types_of(atoms, where=label)
            except ValueError as exc:
                raise TrainingDataError(str(exc)) from exc
            offsets, nbr, vec = next(lists)
            we, wf, ws = config_weights(len(atoms), (w_e, w_f, w_s), scaling,
                                        float(atoms.info.get("weight", 1.0)))
            virial = None
            if stress is not None and periodic:
                virial = _stress_3x3(stress) * atoms.get_volume()
            if forces is not None:
                forces = np.asarray(forces, dtype=np.float64).reshape(-1, 3)
            if potential.repulsive:
                energy, forces, virial = _without_repulsion(potential, offsets, nbr, vec, energy,
                                                            forces, virial)
            out.append(TrainingConfig(
                label=label, types=types, offsets=offsets, nbr=nbr,
                vec=vec,
                energy=float(energy) if energy is not None else 0.0,
                forces=forces,
                virial=virial,
                w_energy=we if energy is not None else 0.0,
                w_forces=wf if forces is not None else 0.0,
                w_stress=ws if virial is not None else 0.0))
    return out


def train_test_split(images, test_fraction=0.2, seed=0):
    """(train, test) lists: a seeded permutation, the first round(f*n) go to test; both keep
    the input order."""
    if not 0.0 <= test_fraction < 1.0:
        raise TrainingDataError(f"test_fraction must be in [0, 1), got {test_fraction}")
    images = list(images)
    order = np.random.default_rng(seed).permutation(len(images))
    n_test = int(round(test_fraction * len(images)))
    test_idx = np.sort(order[:n_test])
    train_idx = np.sort(order[n_test:])
    return [images[i] for i in train_idx], [images[i] for i in test_idx]
