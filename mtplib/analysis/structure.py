"""Structure of trajectories: partial radial and angular distribution functions, and how
alike two of them are.

* ``rdf``: partial g_ab(r) for every element pair, averaged over frames. Normalised per
  frame by the ideal-gas count, g_ab(r) = H_ab(r) / (N_a rho_b 4 pi r^2 dr) with
  rho_b = N_b / V, over every periodic image (``mtplib.neighbors.neighbor_list``), so g -> 1
  at large r and rho_b * integral of 4 pi r^2 g_ab is the number of b neighbours of an a.
* ``adf``: for every triplet type (a, b, c), centre b, the distribution of the angle a-b-c
  over neighbours within per-pair cutoffs (the first RDF minimum unless given), as a
  probability density in 1/degree.
* ``total_rdf``: the total g(r) = sum over ordered pairs x_a x_b g_ab(r) (x: atom fractions).
* ``species_coordination``: mean number of b neighbours of an a atom within per-pair
  cutoffs (the first RDF minimum unless given), per species and in total.
* ``mass_densities``: the mass density (g/cm³) of every frame (an NPT run's density).
* similarity: integrated absolute difference and peak positions.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations_with_replacement

import numpy as np
from ase import Atoms

from ..neighbors import neighbor_list

__all__ = ["pair_key", "rdf", "total_rdf", "coordination_numbers", "species_coordination",
           "mass_densities", "first_minimum", "peak_positions",
           "resolve_cutoffs", "adf", "integrated_absolute_difference", "compare_curves"]


def _elements(images, elements):
    if elements is not None:
        return list(elements)
    seen = []
    for atoms in images:
        for s in atoms.get_chemical_symbols():
            if s not in seen:
                seen.append(s)
    return seen


def pair_key(a: str, b: str, elements: Sequence[str]) -> str:
    """'A-B' with A first in the species order."""
    a, b = sorted((a, b), key=list(elements).index)
    return f"{a}-{b}"


def rdf(images: Sequence[Atoms], r_max: float = 6.0, bins: int = 200,
        elements: Sequence[str] | None = None):
    """(r, g, density): bin centres (bins,), {'A-B': g_AB (bins,)} averaged over the frames
    (3-D periodic), and {element: mean number density (1/Å³)}."""
    images = [images] if isinstance(images, Atoms) else list(images)
    elements = _elements(images, elements)
    edges = np.linspace(0.0, r_max, bins + 1)
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    pairs = [(a, b) for a, b in combinations_with_replacement(elements, 2)]
    g = {pair_key(a, b, elements): np.zeros(bins) for a, b in pairs}
    used = {k: 0 for k in g}
    density = {el: 0.0 for el in elements}
    for atoms in images:
        if not atoms.pbc.all():
            raise ValueError("rdf needs 3-D periodic frames (a density is undefined otherwise)")
        volume = atoms.get_volume()
        symbols = np.array(atoms.get_chemical_symbols())
        i, j, D = neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, r_max)
        d = np.sqrt((D ** 2).sum(axis=1))
        for el in elements:
            density[el] += np.count_nonzero(symbols == el) / volume / len(images)
        for a, b in pairs:
            n_a, n_b = np.count_nonzero(symbols == a), np.count_nonzero(symbols == b)
            if n_a == 0 or n_b == 0:
                continue
            mask = (symbols[i] == a) & (symbols[j] == b)
            hist = np.histogram(d[mask], bins=edges)[0].astype(float)
            key = pair_key(a, b, elements)
            g[key] += hist / (n_a * (n_b / volume) * shell)
            used[key] += 1
    g = {k: v / used[k] for k, v in g.items() if used[k]}
    return 0.5 * (edges[1:] + edges[:-1]), g, density


def total_rdf(g: Mapping[str, np.ndarray], density: Mapping[str, float]) -> np.ndarray:
    """Total g(r) = sum over ordered pairs (a, b) of x_a x_b g_ab(r), x_a = rho_a / rho, from
    the partials and densities of ``rdf`` (a pair that never occurs counts as zero)."""
    total = sum(density.values())
    out = 0.0
    for key, curve in g.items():
        a, b = key.split("-")
        weight = density[a] * density[b] / total ** 2
        out = out + (1.0 if a == b else 2.0) * weight * np.asarray(curve, float)
    return np.asarray(out, float)


def species_coordination(images: Sequence[Atoms], cutoffs: Mapping[str, float],
                         elements: Sequence[str] | None = None) -> dict:
    """{a: {b: n_ab, ..., 'total': n_a}}: the mean number of b atoms within cutoffs['a-b'] (Å,
    either order of the pair) of an a atom, averaged over the a atoms of every frame; 'total'
    sums over b. Pairs without a cutoff count no neighbours."""
    images = [images] if isinstance(images, Atoms) else list(images)
    elements = _elements(images, elements)
    cut = {}
    for a in elements:
        for b in elements:
            key = pair_key(a, b, elements)
            value = cutoffs.get(key, cutoffs.get(f"{key.split('-')[1]}-{key.split('-')[0]}"))
            if value is not None:
                cut[(a, b)] = float(value)
    counts = {a: {b: 0.0 for b in elements} for a in elements}
    centres = {a: 0 for a in elements}
    r_max = max(cut.values()) if cut else 0.0
    for atoms in images:
        symbols = np.array(atoms.get_chemical_symbols())
        for a in elements:
            centres[a] += int(np.count_nonzero(symbols == a))
        if r_max <= 0:
            continue
        i, j, D = neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, r_max)
        d = np.sqrt((D ** 2).sum(axis=1))
        for (a, b), rc in cut.items():
            counts[a][b] += int(np.count_nonzero((symbols[i] == a) & (symbols[j] == b) & (d < rc)))
    out = {}
    for a in elements:
        if centres[a] == 0:
            continue
        out[a] = {b: counts[a][b] / centres[a] for b in elements}
        out[a]["total"] = sum(out[a][b] for b in elements)
    return out


def mass_densities(images: Sequence[Atoms]) -> np.ndarray:
    """Mass density (g/cm³) of every frame: total mass (u) / volume (Å³) x 1.66053906660."""
    images = [images] if isinstance(images, Atoms) else list(images)
    return np.array([a.get_masses().sum() * 1.66053906660 / a.get_volume() for a in images])


def coordination_numbers(r: np.ndarray, g: np.ndarray, density_b: float) -> np.ndarray:
    """Running coordination number n(r_k) = rho_b * sum over bins <= k of g 4 pi r^2 dr (bins
    of uniform width; n at the upper edge of bin k)."""
    dr = r[1] - r[0]
    edges = np.append(r - dr / 2, r[-1] + dr / 2)
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    return density_b * np.cumsum(g * shell)


def _smooth(y, width=3):
    if width <= 1 or len(y) < width:
        return np.asarray(y, float)
    return np.convolve(y, np.ones(width) / width, mode="same")


def peak_positions(x: np.ndarray, y: np.ndarray, rel_height: float = 0.1, smooth: int = 3) -> list:
    """Positions of the peaks of y(x), prominence at least rel_height * max(y)."""
    from scipy.signal import find_peaks
    ys = _smooth(y, smooth)
    if not np.any(ys > 0):
        return []
    top = float(ys.max())
    idx, _ = find_peaks(np.concatenate([[0.0], ys, [0.0]]), height=rel_height * top,
                        prominence=rel_height * top)
    return [float(x[k - 1]) for k in idx]


def first_minimum(r: np.ndarray, g: np.ndarray, smooth: int = 5, tol: float = 0.02) -> float:
    """r of the first minimum after the first peak of g (the middle of a flat minimum,
    e.g. the empty gap between the shells of a crystal); r[-1] if there is none."""
    gs = _smooth(g, smooth)
    peaks = peak_positions(r, g, smooth=smooth)
    if not peaks:
        return float(r[-1])
    k = int(np.searchsorted(r, peaks[0]))
    while k + 1 < len(gs) and gs[k + 1] <= gs[k]:
        k += 1
    if k + 1 >= len(gs):
        return float(r[-1])
    level = gs[k] + tol * float(gs.max())
    lo = k
    while lo - 1 > 0 and gs[lo - 1] <= level:
        lo -= 1
    hi = k
    while hi + 1 < len(gs) and gs[hi + 1] <= level:
        hi += 1
    return float(0.5 * (r[lo] + r[hi]))


def resolve_cutoffs(spec, elements: Sequence[str], r=None, g=None) -> dict:
    """Per-pair cutoffs {'A-B': Å} from a number, a map 'A-B' -> Å (either order), or None
    (the first minimum of the RDF r, g, which must then be given)."""
    keys = [pair_key(a, b, elements) for a, b in combinations_with_replacement(elements, 2)]
    out = {}
    for key in keys:
        a, b = key.split("-")
        if isinstance(spec, (int, float)):
            out[key] = float(spec)
        elif isinstance(spec, Mapping) and (key in spec or f"{b}-{a}" in spec):
            out[key] = float(spec.get(key, spec.get(f"{b}-{a}")))
        elif g is not None and key in g:
            out[key] = first_minimum(r, g[key])
        elif g is not None:
            continue                            # the pair never occurs
        else:
            raise ValueError(f"no cutoff for the pair {key}: give a number, a map 'A-B' -> Å, "
                             "or an RDF for the first-minimum rule")
    return out


def adf(images: Sequence[Atoms], cutoffs: Mapping[str, float], bins: int = 180,
        elements: Sequence[str] | None = None):
    """(theta, p, counts): bin centres in degrees, {'A-B-C': density (1/degree)} with centre
    B and A before C in species order, and the number of angles of each triplet type."""
    images = [images] if isinstance(images, Atoms) else list(images)
    elements = _elements(images, elements)
    order = {el: k for k, el in enumerate(elements)}
    edges = np.linspace(0.0, 180.0, bins + 1)
    hist: dict[str, np.ndarray] = {}
    r_max = max(cutoffs.values())
    for atoms in images:
        symbols = np.array(atoms.get_chemical_symbols())
        i, j, D = neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, r_max)
        d = np.sqrt((D ** 2).sum(axis=1))
        cut = np.array([cutoffs.get(pair_key(symbols[a], symbols[b], elements), 0.0)
                        for a, b in zip(i, j)]) if len(i) else np.zeros(0)
        keep = d < cut
        i, j, D, d = i[keep], j[keep], D[keep], d[keep]
        starts = np.searchsorted(i, np.arange(len(atoms) + 1))
        for centre in range(len(atoms)):
            lo, hi = starts[centre], starts[centre + 1]
            if hi - lo < 2:
                continue
            k, l = np.triu_indices(hi - lo, 1)
            u = D[lo:hi] / d[lo:hi, None]
            cosine = np.clip((u[k] * u[l]).sum(axis=1), -1.0, 1.0)
            angle = np.degrees(np.arccos(cosine))
            nb = symbols[j[lo:hi]]
            first = np.where([order[x] <= order[y] for x, y in zip(nb[k], nb[l])], nb[k], nb[l])
            last = np.where([order[x] <= order[y] for x, y in zip(nb[k], nb[l])], nb[l], nb[k])
            for key in sorted(set(zip(first, last))):
                m = (first == key[0]) & (last == key[1])
                name = f"{key[0]}-{symbols[centre]}-{key[1]}"
                hist.setdefault(name, np.zeros(bins))
                hist[name] += np.histogram(angle[m], bins=edges)[0]
    width = edges[1] - edges[0]
    counts = {k: int(v.sum()) for k, v in sorted(hist.items())}
    density = {k: v / (v.sum() * width) for k, v in sorted(hist.items()) if v.sum() > 0}
    return 0.5 * (edges[1:] + edges[:-1]), density, counts


def integrated_absolute_difference(x: np.ndarray, f: np.ndarray, g: np.ndarray) -> float:
    """Integral of |f - g| dx over the uniform grid x (rectangle rule on bin centres)."""
    dx = float(x[1] - x[0]) if len(x) > 1 else 1.0
    return float(np.abs(np.asarray(f) - np.asarray(g)).sum() * dx)


def compare_curves(x: np.ndarray, test: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]) -> dict:
    """Per key: integrated absolute difference, its ratio to the integral of |reference|,
    and the peak positions of both (and the shift of the first peak)."""
    out = {}
    for key in sorted(set(test) | set(reference)):
        f = test.get(key, np.zeros_like(x))
        g = reference.get(key, np.zeros_like(x))
        iad = integrated_absolute_difference(x, f, g)
        norm = integrated_absolute_difference(x, g, np.zeros_like(g))
        p_test, p_ref = peak_positions(x, f), peak_positions(x, g)
        out[key] = {"integrated_absolute_difference": iad,
                    "relative_difference": iad / norm if norm > 0 else None,
                    "peaks": p_test, "peaks_reference": p_ref,
                    # rounded: a shift of k bins reads k x the bin width, not 0.030000000000000027
                    "first_peak_shift": (float(np.round(p_test[0] - p_ref[0], 9))
                                         if p_test and p_ref else None)}
    return out
