"""Formation energies and the lower convex hull (Novikov et al. 2021, sec. 6).

Formation energy per atom of a structure with N_e atoms of element e and energy E:
E_f = (E - sum_e N_e mu_e) / N, with mu_e the lowest energy per atom among the structures
made of e alone. The hull is the lower convex hull of the points (composition, E_f)
(scipy's Qhull); the distance to the hull is E_f minus the hull's value at that composition,
the largest of the lower facets' planes there (a convex piecewise-linear function).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial import ConvexHull, QhullError

ON_HULL_TOL = 1e-6     # eV/atom: distance below which a structure is on the hull


class HullError(ValueError):
    """Structures that do not define a hull (an element without a pure structure, ...)."""


def composition_counts(images, elements):
    """(n, k) atom counts of `elements` in each structure."""
    index = {el: k for k, el in enumerate(elements)}
    counts = np.zeros((len(images), len(elements)))
    for i, atoms in enumerate(images):
        for s in atoms.get_chemical_symbols():
            if s not in index:
                raise HullError(f"structure {i} ({atoms.get_chemical_formula()}) has element "
                                f"{s}, not in {list(elements)}")
            counts[i, index[s]] += 1
    return counts


def reference_energies(energies, counts, elements):
    """mu_e: the lowest energy per atom among the structures of element e alone."""
    energies = np.asarray(energies, float)
    n = counts.sum(axis=1)
    mu = np.zeros(len(elements))
    for k, el in enumerate(elements):
        pure = (counts[:, k] == n) & np.isfinite(energies)
        if not pure.any():
            raise HullError(f"no structure of {el} alone: its reference energy is undefined")
        mu[k] = (energies[pure] / n[pure]).min()
    return mu


def formation_energies(energies, counts, mu):
    """E_f = (E - sum_e N_e mu_e) / N per structure (eV/atom)."""
    counts = np.asarray(counts, float)
    return (np.asarray(energies, float) - counts @ np.asarray(mu, float)) / counts.sum(axis=1)


@dataclass
class Hull:
    """Compositions (fractions of elements[1:]), formation energies, distance to the hull."""

    elements: list
    fractions: np.ndarray        # (n, k-1)
    formation_energy: np.ndarray  # (n,) eV/atom
    distance: np.ndarray         # (n,) eV/atom, >= 0
    vertices: np.ndarray         # indices of the structures at the hull's corners
    mu: np.ndarray               # (k,) eV/atom
    names: list

    @property
    def on_hull(self):
        return self.distance < ON_HULL_TOL

    def hull_energy(self, fractions):
        return _hull_energy(self._points(), np.atleast_2d(fractions))

    def _points(self):
        return np.column_stack([self.fractions, self.formation_energy])

    def line(self):
        """Binary hull corners sorted by composition: (x, E_f)."""
        v = self.vertices[np.argsort(self.fractions[self.vertices, 0], kind="stable")]
        return self.fractions[v, 0], self.formation_energy[v]


def _lower_facets(points):
    """Plane equations (normal, offset) of the lower hull of `points` (n, d)."""
    d = points.shape[1]
    try:
        hull = ConvexHull(points)
    except QhullError:
        # flat set (every E_f equal along a line): the plane through it is the hull
        return None, np.arange(len(points))
    lower = hull.equations[:, d - 1] < -1e-12
    corners = np.unique(hull.simplices[lower])
    return hull.equations[lower], corners


def _hull_energy(points, fractions):
    eqs, _ = _lower_facets(points)
    if eqs is None:
        return np.full(len(fractions), points[:, -1].min())
    # each facet: n . (x, E) + c = 0  ->  E = -(n_x . x + c) / n_E; the hull is their max
    d = points.shape[1]
    planes = -(fractions @ eqs[:, :d - 1].T + eqs[:, d]) / eqs[:, d - 1]
    return planes.max(axis=1)


def convex_hull(energies, images, elements, names=None, mu=None):
    """The lower convex hull of `images` with total `energies` (eV; NaN: left out).

    mu: reference energies per atom of the elements (default `reference_energies`)."""
    elements = list(elements)
    counts = composition_counts(images, elements)
    energies = np.asarray(energies, float)
    if mu is None:
        mu = reference_energies(energies, counts, elements)
    e_form = formation_energies(energies, counts, mu)
    fractions = counts[:, 1:] / counts.sum(axis=1, keepdims=True)
    names = list(names) if names is not None else [a.get_chemical_formula() for a in images]
    ok = np.isfinite(e_form)
    distance = np.full(len(images), np.nan)
    points = np.column_stack([fractions[ok], e_form[ok]])
    _, corners = _lower_facets(points)
    distance[ok] = np.maximum(e_form[ok] - _hull_energy(points, fractions[ok]), 0.0)
    index = np.flatnonzero(ok)
    return Hull(elements=elements, fractions=fractions, formation_energy=e_form,
                distance=distance, vertices=index[corners], mu=np.asarray(mu, float),
                names=names)


def write_hull_csv(path, hull, extra=None):
    """hull.csv: name, composition, formation energy and distance (meV/atom), on-hull flag,
    and `extra` columns ({column: values})."""
    extra = extra or {}
    header = ["name"] + [f"x_{el}" for el in hull.elements[1:]] + [
        "formation_energy_meV_per_atom", "distance_to_hull_meV_per_atom", "on_hull"] + list(extra)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        on = hull.on_hull
        for i, name in enumerate(hull.names):
            row = [name] + [f"{x:.6f}" for x in hull.fractions[i]] + [
                f"{1e3 * hull.formation_energy[i]:.4f}", f"{1e3 * hull.distance[i]:.4f}",
                int(on[i])] + [extra[k][i] for k in extra]
            w.writerow(row)
    return Path(path)


def hull_plot(path, hull: Hull, reference: Hull | None = None,
              label="MTP", reference_label="reference"):
    """hull.png: formation energy against composition with the hull line (binary); with a
    reference, its hull dashed on the same axes, its own panel beside, and a parity panel."""
    from .plots import _figure, _save
    if len(hull.elements) != 2:
        raise HullError(f"hull_plot draws binary hulls; got elements {hull.elements}")
    panels = [(hull, label)] + ([(reference, reference_label)] if reference is not None else [])
    n = len(panels) + (reference is not None)
    fig = _figure(n)
    fig.subplots_adjust(left=0.16 if n == 1 else 0.06, wspace=0.32)   # room for the y label
    axes = [fig.add_subplot(1, n, k + 1) for k in range(n)]
    x_label = f"x({hull.elements[1]}) in {hull.elements[0]}$_{{1-x}}${hull.elements[1]}$_x$"
    for ax, (h, name) in zip(axes, panels):
        on = h.on_hull
        ax.scatter(h.fractions[~on, 0], 1e3 * h.formation_energy[~on], s=8, c="0.55",
                   label=f"{name}: {np.isfinite(h.formation_energy).sum()} structures")
        xs, es = h.line()
        ax.plot(xs, 1e3 * es, "-o", c="C0" if h is hull else "C3", ms=5,
                label=f"{name} hull ({on.sum()} on it)")
        if h is hull and reference is not None:
            xr, er = reference.line()
            ax.plot(xr, 1e3 * er, "--s", c="C3", ms=4, mfc="none", label=f"{reference_label} hull")
        ax.set_xlabel(x_label)
        ax.set_ylabel("formation energy (meV/atom)")
        ax.set_title(f"{name}: {'-'.join(h.elements)} convex hull")
        ax.legend(fontsize=7, loc="upper left")
    if reference is not None:
        ax = axes[-1]
        both = np.isfinite(hull.formation_energy) & np.isfinite(reference.formation_energy)
        er, em = 1e3 * reference.formation_energy[both], 1e3 * hull.formation_energy[both]
        mae = np.abs(em - er).mean() if both.any() else np.nan
        ax.scatter(er, em, s=8, c="C0")
        lim = [min(er.min(), em.min()), max(er.max(), em.max())] if both.any() else [0, 1]
        ax.plot(lim, lim, "k-", lw=0.8)
        ax.set_xlabel(f"{reference_label} formation energy (meV/atom)")
        ax.set_ylabel(f"{label} formation energy (meV/atom)")
        ax.set_title(f"same structures: MAE {mae:.2f} meV/atom")
    return _save(fig, path)


def hull_of_relaxed(frames, elements, where="relaxed"):
    """The Hull of relaxed structures (`relaxation_frames`: info relaxed_energy, status);
    a relaxation that stopped or failed enters with no energy (NaN: off the hull)."""
    if any("relaxed_energy" not in a.info for a in frames):
        raise HullError(f"{where}: every frame needs info 'relaxed_energy' (from relax-pool)")
    ok = [a.info.get("status", "converged") in ("converged", "not-converged") for a in frames]
    energies = [a.info["relaxed_energy"] if k else float("nan") for a, k in zip(frames, ok)]
    names = [str(a.info.get("name", f"{where}[{i}]")) for i, a in enumerate(frames)]
    return convex_hull(energies, frames, elements, names=names)
