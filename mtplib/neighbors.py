"""Full neighbour lists for MTP evaluation, behind one function.

``neighbor_list(positions, cell, pbc, cutoff) -> (i, j, D)`` returns every pair
(i, j, shift) with ``|D| < cutoff``, ``D = r_j - r_i + shift @ cell``, over *all*
periodic images (no minimum-image assumption), sorted by ``i``, without the self
pair at zero shift. ``neighbor_csr`` gives the same pairs with CSR offsets.

Backends: ``backend="numba"`` (the cell list below) is used in every case, the
fastest of the three in benchmarks/bench_neighbors.py (figures in
benchmarks/RESULTS.md); ``backend="vesin"`` and ``backend="ase"`` remain available
and are tested as cross-checks. All three agree pair for pair (random triclinic
cells, cutoffs of several cell heights, mixed pbc, atoms outside the cell; vesin
0.6 handles all of these). Exception: ASE drops pairs when a non-periodic cell row
is zero under mixed pbc; vesin and numba agree there.

Numba algorithm: non-periodic cell vectors are replaced by orthogonal ones that
span the atoms, so that every case (bulk, slab, wire, molecule) is one
parallelepiped. Atoms are wrapped into it and binned along each cell vector into
bins at least ``cutoff`` thick (perpendicular height / cutoff). Each atom then
scans ``ceil(cutoff / bin thickness)`` bins each way, wrapping bin indices into
lattice shifts along periodic directions, which covers cutoffs larger than the
cell (many images of one atom, and an atom's own images).
"""

import numpy as np

from .numba_cache import isolate_cache

isolate_cache()          # before the first kernel: see numba_cache

from .jit import njit  # noqa: E402

from .threads import run_chunks  # noqa: E402

__all__ = ["neighbor_list", "neighbor_csr", "neighbor_csr_shortest", "neighbor_csr_batch",
           "neighbor_list_atoms", "shortest_distance"]

_BACKENDS = ("numba", "vesin", "ase")
# a periodic cell whose volume is below this fraction of |a||b||c| is degenerate
_MIN_SINE_VOLUME = 1e-8
# refuse inputs that would need more than this many periodic images per atom
_MAX_IMAGES = 10_000_000
# from this many atoms, and with more than one numba thread, the search runs in parallel
PARALLEL_ATOMS = 1000


def neighbor_list(positions, cell, pbc, cutoff, backend="numba"):
    """Return (i, j, D) of all pairs with |D| < cutoff (strict).

    i, j are int64 centre and neighbour indices, D = r_j - r_i + shift @ cell is a
    float64 (n_pairs, 3) array. All periodic images within the cutoff are listed
    (the minimum image is NOT assumed); the self pair with zero shift is excluded.
    Pairs are sorted by i (stable). ``cell`` may be zero when pbc is all False.
    """
    return _search(*_validate(positions, cell, pbc, cutoff), backend)


def neighbor_csr(positions, cell, pbc, cutoff, backend="numba"):
    """Return (offsets, j, D): the neighbours of atom a are j[offsets[a]:offsets[a+1]]."""
    positions, cell, pbc, cutoff = _validate(positions, cell, pbc, cutoff)
    i, j, D = _search(positions, cell, pbc, cutoff, backend)
    return _csr_offsets(i, len(positions)), j, D


def neighbor_csr_shortest(positions, cell, pbc, cutoff, backend="numba", parallel=None):
    """`neighbor_csr` and the shortest pair distance (inf without pairs), in one numba call
    for the numba backend (what every evaluation takes). With PARALLEL_ATOMS atoms or more
    and several numba threads (or `parallel=True`) the search runs on threads over blocks of
    atoms (`mtplib.threads`); the pairs are the same, in the same order."""
    positions, cell, pbc, cutoff = _validate(positions, cell, pbc, cutoff)
    if backend != "numba" or len(positions) == 0 or cutoff == 0.0:
        i, j, D = _search(positions, cell, pbc, cutoff, backend)
        return _csr_offsets(i, len(positions)), j, D, (shortest_distance(D) if len(D) else np.inf)
    box, origin = _working_box(positions, cell, pbc, cutoff)
    if parallel is None:
        from .jit import get_num_threads
        parallel = get_num_threads() > 1 and len(positions) >= PARALLEL_ATOMS
    offsets, j, D, shortest, n_images = _cell_list_csr(positions, box, origin, pbc, cutoff,
                                                       _MAX_IMAGES, parallel)
    _check_images(n_images, cutoff, cell)
    return offsets, j, D, shortest


def _cell_list_csr(positions, box, origin, pbc, cutoff, max_images, parallel):
    """`_cell_list` as CSR offsets, with the shortest distance: (offsets, j, D, shortest,
    images); on threads over blocks of atoms if `parallel`. Chosen here: a serial run never
    compiles the blocked search."""
    if parallel:
        return _cell_list_csr_parallel(positions, box, origin, pbc, cutoff, max_images)
    return _cell_list_csr_serial(positions, box, origin, pbc, cutoff, max_images)


@njit(cache=True)
def _cell_list_csr_serial(positions, box, origin, pbc, cutoff, max_images):
    i, j, D, n_images = _cell_list(positions, box, origin, pbc, cutoff, max_images)
    shortest = shortest_distance(D) if D.shape[0] else np.inf
    return _csr_offsets(i, positions.shape[0]), j, D, shortest, n_images


def _cell_list_csr_parallel(positions, box, origin, pbc, cutoff, max_images):
    n_bins, reach, n_images, volume = _cell_geometry(positions, box, cutoff)
    if n_images > max_images:
        return np.zeros(positions.shape[0] + 1, np.int64), np.zeros(0, np.int64), \
            np.zeros((0, 3)), np.inf, n_images
    offsets, j, D = _scan_bins_parallel(positions, box, origin, pbc, n_bins, reach, cutoff, volume)
    shortest = shortest_distance(D) if D.shape[0] else np.inf
    return offsets, j, D, shortest, n_images


class StructureError(ValueError):
    """Bad input in structure `index` of a batch; `reason` says what."""

    def __init__(self, index, reason):
        super().__init__(f"structure {index}: {reason}")
        self.index, self.reason = index, reason


def neighbor_csr_batch(structures, cutoff):
    """Neighbour lists of many structures at once, on threads over the structures.

    `structures` is a list of (positions, cell, pbc). Returns (atom_start, offsets, j, D,
    shortest): the atoms of structure c are atom_start[c] .. atom_start[c+1]-1 of one joined
    list, whose CSR offsets and neighbour indices j count in that joined numbering; shortest
    is the shortest pair distance per structure (inf without pairs). Each structure's pairs
    are exactly those of `neighbor_csr`, in the same order. Bad input raises StructureError
    (a ValueError) with the index of the structure at fault.
    """
    n = len(structures)
    origins = np.zeros((n, 3))
    periodic = _periodic_batch(structures, cutoff)
    if periodic is not None:            # the common case, checked for all structures at once
        positions, sizes, boxes = periodic
        pbcs = np.ones((n, 3), dtype=np.bool_)
    else:
        sizes = np.zeros(n + 1, dtype=np.int64)
        boxes = np.zeros((n, 3, 3))
        pbcs = np.zeros((n, 3), dtype=np.bool_)
        joined = []
        for c, (positions, cell, pbc) in enumerate(structures):
            try:
                positions, cell, pbc, cutoff = _validate(positions, cell, pbc, cutoff)
                if len(positions) and cutoff > 0.0:
                    boxes[c], origins[c] = _working_box(positions, cell, pbc, cutoff)
                else:
                    boxes[c] = np.eye(3)
            except ValueError as exc:
                raise StructureError(c, str(exc)) from exc
            pbcs[c] = pbc
            sizes[c + 1] = len(positions)
            joined.append(positions)
        positions = np.concatenate(joined) if joined else np.zeros((0, 3))
    atom_start = np.cumsum(sizes)
    cutoff = float(cutoff)
    offsets, j, D, shortest, n_images = _batch_cell_lists(positions, atom_start, boxes, origins,
                                                          pbcs, cutoff, _MAX_IMAGES)
    for c in np.flatnonzero(n_images > _MAX_IMAGES):
        try:
            _check_images(n_images[c], cutoff, np.asarray(structures[c][1]))
        except ValueError as exc:
            raise StructureError(c, str(exc)) from exc
    return atom_start, offsets, j, D, shortest


def _periodic_batch(structures, cutoff):
    """(joined positions, sizes with a leading 0, cells) when every structure is a 3-D periodic
    cell of finite float64 (n, 3) positions with a non-degenerate cell and the cutoff is
    valid -- what `_validate` accepts, checked for all at once; None otherwise (then each
    structure is checked on its own, so that an error names it)."""
    if not (isinstance(cutoff, (float, int)) and np.isfinite(cutoff) and cutoff > 0.0):
        return None
    positions, cells = [], []
    for p, cell, pbc in structures:
        if not (isinstance(p, np.ndarray) and p.dtype == np.float64 and p.ndim == 2
                and p.shape[1] == 3 and np.all(pbc)):
            return None
        positions.append(p)
        cells.append(cell)
    try:
        cells = np.array(cells, dtype=np.float64).reshape(len(structures), 3, 3)
    except ValueError:
        return None
    joined = np.concatenate(positions) if positions else np.zeros((0, 3))
    if not (np.isfinite(joined).all() and np.isfinite(cells).all()):
        return None
    volume = np.abs(np.linalg.det(cells)) if len(cells) else np.zeros(0)
    lengths = np.prod(np.linalg.norm(cells, axis=2), axis=1)
    if not np.all(volume > _MIN_SINE_VOLUME * lengths) or not np.all(lengths > 0.0):
        return None
    sizes = np.zeros(len(structures) + 1, dtype=np.int64)
    sizes[1:] = [len(p) for p in positions]
    return joined, sizes, cells


def _batch_cell_lists(positions, atom_start, boxes, origins, pbcs, cutoff, max_images):
    """`_cell_list` of every structure, on threads over the structures (`mtplib.threads`):
    each writes into its own estimated slice of one buffer (a structure that overflows its
    estimate is searched again at its true size), then the slices are joined in structure
    order."""
    n_cfg = atom_start.shape[0] - 1
    capacity_start = _batch_capacity(atom_start, boxes, cutoff)
    buf_i, buf_j, buf_D = _pair_buffers(capacity_start[n_cfg])
    n_pairs = np.zeros(n_cfg, dtype=np.int64)
    n_images = np.zeros(n_cfg, dtype=np.int64)
    shortest = np.full(n_cfg, np.inf)
    pair_start = np.zeros(n_cfg + 1, dtype=np.int64)
    offsets = np.zeros(atom_start[n_cfg] + 1, dtype=np.int64)
    args = (positions, atom_start, boxes, origins, pbcs, cutoff, max_images, capacity_start, buf_i,
            buf_j, buf_D, n_pairs, n_images, shortest, pair_start, offsets)
    run_chunks(_structure_pairs, n_cfg, False, *args, buf_j, buf_D)     # search, into the buffer
    np.cumsum(n_pairs, out=pair_start[1:])
    out_j = np.empty(pair_start[n_cfg], dtype=np.int64)
    out_D = np.empty((pair_start[n_cfg], 3))
    run_chunks(_structure_pairs, n_cfg, True, *args, out_j, out_D)      # join
    np.cumsum(offsets, out=offsets)
    return offsets, out_j, out_D, shortest, n_images


@njit(cache=True)
def _pair_buffers(size):
    """Room for `size` pairs (i, j, D), from numba: the pages that a search leaves unused take
    no memory (numpy asks for huge pages for large arrays, which fills them)."""
    return np.empty(size, np.int64), np.empty(size, np.int64), np.empty((size, 3))


@njit(cache=True)
def _batch_capacity(atom_start, boxes, cutoff):
    """Start of each structure's slice of the pair buffer (`_batch_cell_lists`)."""
    n_cfg = atom_start.shape[0] - 1
    capacity_start = np.zeros(n_cfg + 1, dtype=np.int64)
    for c in range(n_cfg):
        n_atoms = atom_start[c + 1] - atom_start[c]
        volume = max(abs(_det3(boxes[c])), 1e-300)
        capacity_start[c + 1] = capacity_start[c] + _pair_capacity(n_atoms, volume, cutoff)
    return capacity_start


@njit(cache=True, nogil=True)
def _structure_pairs(lo, hi, join, positions, atom_start, boxes, origins, pbcs, cutoff,
                     max_images, capacity_start, buf_i, buf_j, buf_D, n_pairs, n_images, shortest,
                     pair_start, offsets, out_j, out_D):
    """Structures lo..hi-1 of `_batch_cell_lists`: without `join`, the `_cell_list` of each
    into its slice of the buffer (as far as it fits), its pair count, images and shortest
    distance; with `join`, its pairs into place in the joined list (joined numbering) and its
    atoms' pair counts into offsets[a + 1]."""
    for c in range(lo, hi):
        a0, a1 = atom_start[c], atom_start[c + 1]
        k0 = capacity_start[c]
        if not join:
            if a1 == a0 or cutoff == 0.0:
                continue
            i, j, D, n_images[c] = _cell_list(positions[a0:a1], boxes[c], origins[c], pbcs[c],
                                              cutoff, max_images)
            n_pairs[c] = i.shape[0]
            if D.shape[0]:
                shortest[c] = shortest_distance(D)
            for k in range(min(n_pairs[c], capacity_start[c + 1] - k0)):
                buf_i[k0 + k] = i[k]
                buf_j[k0 + k] = j[k]
                buf_D[k0 + k, 0] = D[k, 0]          # element by element: a row copy makes a view
                buf_D[k0 + k, 1] = D[k, 1]
                buf_D[k0 + k, 2] = D[k, 2]
            continue
        p0 = pair_start[c]
        if n_pairs[c] > capacity_start[c + 1] - k0:     # rare: search again
            i, j, D, _ = _cell_list(positions[a0:a1], boxes[c], origins[c], pbcs[c], cutoff,
                                    max_images)
        else:
            i = buf_i[k0:k0 + n_pairs[c]]
            j = buf_j[k0:k0 + n_pairs[c]]
            D = buf_D[k0:k0 + n_pairs[c]]
        for k in range(n_pairs[c]):
            offsets[a0 + i[k] + 1] += 1
            out_j[p0 + k] = a0 + j[k]
            out_D[p0 + k, 0] = D[k, 0]
            out_D[p0 + k, 1] = D[k, 1]
            out_D[p0 + k, 2] = D[k, 2]


@njit(cache=True, inline="always")
def _det3(m):
    """Determinant of a 3x3 matrix (no LAPACK call: one per structure of a batch)."""
    return (m[0, 0] * (m[1, 1] * m[2, 2] - m[1, 2] * m[2, 1])
            - m[0, 1] * (m[1, 0] * m[2, 2] - m[1, 2] * m[2, 0])
            + m[0, 2] * (m[1, 0] * m[2, 1] - m[1, 1] * m[2, 0]))


@njit(cache=True, inline="always")
def _cross_norm(u, v):
    """|u x v| of two 3-vectors (no np.cross: its overloads cost seconds of compile)."""
    x = u[1] * v[2] - u[2] * v[1]
    y = u[2] * v[0] - u[0] * v[2]
    z = u[0] * v[1] - u[1] * v[0]
    return np.sqrt(x * x + y * y + z * z)


@njit(cache=True)
def _inverse3(m):
    """Inverse of a 3x3 matrix by its adjugate (no LAPACK: np.linalg.inv's error paths and
    LAPACK bindings cost seconds of compile); m must be non-singular (a checked cell)."""
    inv = np.empty((3, 3))
    for r in range(3):
        r1, r2 = (r + 1) % 3, (r + 2) % 3
        for c in range(3):
            c1, c2 = (c + 1) % 3, (c + 2) % 3
            # cofactor of m[c, r] (cyclic indices carry the sign)
            inv[r, c] = m[c1, r1] * m[c2, r2] - m[c1, r2] * m[c2, r1]
    det = m[0, 0] * inv[0, 0] + m[0, 1] * inv[1, 0] + m[0, 2] * inv[2, 0]
    for r in range(3):
        for c in range(3):
            inv[r, c] /= det
    return inv


@njit(cache=True)
def _csr_offsets(i, n_atoms):
    """offsets[a] .. offsets[a+1] are the pairs of atom a, for pairs sorted by i."""
    offsets = np.zeros(n_atoms + 1, dtype=np.int64)
    for p in range(i.shape[0]):
        offsets[i[p] + 1] += 1
    for a in range(n_atoms):
        offsets[a + 1] += offsets[a]
    return offsets


@njit(cache=True)
def shortest_distance(D):
    """min |D_p| over the pair vectors (inf when there are none)."""
    best = np.inf
    for p in range(D.shape[0]):
        d2 = D[p, 0] * D[p, 0] + D[p, 1] * D[p, 1] + D[p, 2] * D[p, 2]
        if d2 < best:
            best = d2
    return np.sqrt(best)


def neighbor_list_atoms(atoms, cutoff, backend="numba"):
    """neighbor_list for an ase.Atoms object."""
    return neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, cutoff, backend=backend)


def _search(positions, cell, pbc, cutoff, backend):
    if backend == "numba":
        return _numba_list(positions, cell, pbc, cutoff)
    if backend == "vesin":
        return _vesin_list(positions, cell, pbc, cutoff)
    if backend == "ase":
        return _ase_list(positions, cell, pbc, cutoff)
    raise ValueError(f"unknown neighbour-list backend {backend!r}; choose one of {_BACKENDS}")


# --- input checks: clear messages instead of numba tracebacks ---------------


def _validate(positions, cell, pbc, cutoff):
    positions = np.ascontiguousarray(positions, dtype=np.float64)
    if positions.size == 0:
        positions = positions.reshape(0, 3)
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise ValueError(f"positions must have shape (n_atoms, 3), got {positions.shape}")
    cell = np.ascontiguousarray(cell, dtype=np.float64)
    if cell.shape != (3, 3):
        raise ValueError(f"cell must have shape (3, 3), got {cell.shape}")
    periodic = np.zeros(3, dtype=bool)
    periodic[:] = pbc  # a single bool or one per cell vector
    pbc = periodic
    cutoff = float(cutoff)
    if not np.isfinite(cutoff) or cutoff < 0.0:
        raise ValueError(f"cutoff must be a finite non-negative distance, got {cutoff}")

    finite = np.isfinite(positions)
    if not finite.all():
        bad = np.flatnonzero(~finite.all(axis=1))
        raise ValueError(
            f"positions contain NaN or inf at atom index {int(bad[0])}"
            f" ({len(bad)} atom(s) affected, first: {positions[bad[0]].tolist()})"
        )
    if not np.isfinite(cell).all() and not np.isfinite(cell[pbc]).all():
        raise ValueError(f"periodic cell vectors contain NaN or inf: {cell.tolist()}")
    _check_periodic_volume(cell, pbc)
    return positions, cell, pbc, cutoff


def _check_periodic_volume(cell, pbc):
    """Raise if the periodic cell vectors span zero (or near-zero) volume/area/length."""
    measure, length_product, n_periodic = _periodic_measure(cell, pbc)
    if n_periodic and not measure > _MIN_SINE_VOLUME * length_product > 0.0:
        raise ValueError(
            f"periodic cell has zero or near-zero volume ({measure:.3g} spanned by the"
            f" {n_periodic} periodic vector(s), pbc={pbc.tolist()}, cell={cell.tolist()});"
            " give a non-degenerate cell or set pbc=False along the missing directions"
        )


@njit(cache=True)
def _periodic_measure(cell, pbc):
    """Volume, area or length spanned by the periodic cell vectors, and the product of their lengths."""
    rows = np.flatnonzero(pbc)
    length_product = 1.0
    for k in rows:
        length_product *= np.sqrt(np.sum(cell[k] ** 2))
    if len(rows) == 3:
        measure = abs(_det3(cell))
    elif len(rows) == 2:
        measure = _cross_norm(cell[rows[0]], cell[rows[1]])
    else:
        measure = length_product
    return measure, length_product, len(rows)


# --- numba cell list ----------------------------------------------------------


def _numba_list(positions, cell, pbc, cutoff):
    if len(positions) == 0 or cutoff == 0.0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3))
    box, origin = _working_box(positions, cell, pbc, cutoff)
    i, j, D, n_images = _cell_list(positions, box, origin, pbc, cutoff, _MAX_IMAGES)
    _check_images(n_images, cutoff, cell)
    return i, j, D


def _check_images(n_images, cutoff, cell):
    if n_images > _MAX_IMAGES:
        raise ValueError(
            f"cutoff {cutoff} is too large for this cell ({cell.tolist()}):"
            f" it would scan {n_images} cell images per atom"
        )


def _working_box(positions, cell, pbc, cutoff):
    """A full-rank box whose periodic rows are the cell vectors.

    Non-periodic rows are replaced by orthonormal directions perpendicular to the
    periodic ones, scaled to span the atoms (at least one cutoff); ``origin`` puts
    the atoms inside the box along those directions. Their length never enters D.
    """
    if pbc.all():
        return cell, np.zeros(3)
    box = cell.copy()
    periodic = np.flatnonzero(pbc)
    free = np.flatnonzero(~pbc)
    # orthonormal basis: periodic subspace first (Gram-Schmidt), then its complement
    basis = []
    for k in periodic:
        v = cell[k] - sum(np.dot(cell[k], e) * e for e in basis)
        basis.append(v / np.linalg.norm(v))
    while len(basis) < 3:  # the axis sticking out furthest from the span so far
        residuals = [axis - sum(np.dot(axis, e) * e for e in basis) for axis in np.eye(3)]
        v = max(residuals, key=np.linalg.norm)
        basis.append(v / np.linalg.norm(v))
    origin = np.zeros(3)
    for k, e in zip(free, basis[len(periodic):]):
        along = positions @ e
        low, high = along.min(), along.max()
        box[k] = e * max(high - low, cutoff)
        origin += low * e
    return box, origin


@njit(cache=True)
def _cell_geometry(positions, box, cutoff):
    """(bins along each box vector, bins to scan each way, images scanned per atom, volume)."""
    n_atoms = positions.shape[0]
    # perpendicular height along each box vector: volume / area of the opposite face
    volume = abs(_det3(box))
    heights = np.empty(3)
    for k in range(3):
        heights[k] = volume / _cross_norm(box[(k + 1) % 3], box[(k + 2) % 3])
    # bins at least one cutoff thick (thinner ones, cutoff/2 or /3, were slower);
    # fewer, wider bins for sparse systems
    n_bins = np.maximum(1, np.floor(heights / cutoff)).astype(np.int64)
    while np.prod(n_bins) > 8 * n_atoms + 64:
        n_bins[np.argmax(n_bins)] //= 2
    # bins to scan each way; the 1e-9 margin absorbs rounding at bin edges
    reach = np.ceil(cutoff * n_bins / heights + 1e-9).astype(np.int64)
    return n_bins, reach, np.prod(2 * reach + 1), volume


@njit(cache=True, inline="always")
def _pair_capacity(n_atoms, volume, cutoff):
    """Pairs to make room for: the mean density's count within the cutoff sphere, with room
    to spare (the searches rerun at the exact count when it falls short)."""
    return int(n_atoms * (4.19 * cutoff**3 * n_atoms / volume * 1.3 + 16))


@njit(cache=True)
def _cell_list(positions, box, origin, pbc, cutoff, max_images):
    """All pairs within cutoff over all images: (i, j, D, images scanned per atom)."""
    n_atoms = positions.shape[0]
    n_bins, reach, n_images, volume = _cell_geometry(positions, box, cutoff)
    if n_images > max_images:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3)), n_images
    # capacity from the mean density; rerun with the exact count if it was short
    capacity = _pair_capacity(n_atoms, volume, cutoff)
    i, j, D, n_pairs = _scan_bins(positions, box, origin, pbc, n_bins, reach, cutoff, capacity)
    if n_pairs > capacity:
        i, j, D, n_pairs = _scan_bins(positions, box, origin, pbc, n_bins, reach, cutoff, n_pairs)
    return i[:n_pairs], j[:n_pairs], D[:n_pairs], n_images


@njit(cache=True)
def _bin_atoms(positions, box, origin, pbc, n_bins):
    """Atoms wrapped into the box along periodic directions and sorted into bins:
    (wrapped positions, bin of each atom, bin start offsets, atoms in bin order, wrapped
    positions in bin order)."""
    n_atoms = positions.shape[0]
    inverse = _inverse3(box)
    wrapped = np.empty((n_atoms, 3))
    bin_of = np.empty(n_atoms, np.int64)
    r = np.empty(3)
    for a in range(n_atoms):
        for c in range(3):
            r[c] = positions[a, c] - origin[c]
        index = 0
        for k in range(3):
            s = r[0] * inverse[0, k] + r[1] * inverse[1, k] + r[2] * inverse[2, k]
            if pbc[k]:
                image = np.floor(s)
                s -= image
                for c in range(3):
                    r[c] -= image * box[k, c]
            b = min(max(int(s * n_bins[k]), 0), n_bins[k] - 1)
            index = index * n_bins[k] + b
        for c in range(3):
            wrapped[a, c] = r[c]
        bin_of[a] = index
    # atoms grouped by bin (counting sort)
    total_bins = n_bins[0] * n_bins[1] * n_bins[2]
    bin_start = np.zeros(total_bins + 1, np.int64)
    for a in range(n_atoms):
        bin_start[bin_of[a] + 1] += 1
    for b in range(total_bins):
        bin_start[b + 1] += bin_start[b]
    fill = bin_start[:-1].copy()
    atoms_by_bin = np.empty(n_atoms, np.int64)
    for a in range(n_atoms):
        atoms_by_bin[fill[bin_of[a]]] = a
        fill[bin_of[a]] += 1
    # wrapped positions in bin order, one row per axis: contiguous vector reads below
    binned = np.empty((3, n_atoms))
    for slot in range(n_atoms):
        for c in range(3):
            binned[c, slot] = wrapped[atoms_by_bin[slot], c]
    # the box around each bin's atoms (Cartesian): images of bins out of reach are skipped
    bin_box = np.empty((total_bins, 2, 3))
    for b in range(total_bins):
        for c in range(3):
            bin_box[b, 0, c] = np.inf
            bin_box[b, 1, c] = -np.inf
        for slot in range(bin_start[b], bin_start[b + 1]):
            for c in range(3):
                bin_box[b, 0, c] = min(bin_box[b, 0, c], binned[c, slot])
                bin_box[b, 1, c] = max(bin_box[b, 1, c], binned[c, slot])
    return wrapped, bin_of, bin_start, atoms_by_bin, binned, bin_box


@njit(cache=True)
def _largest_bin(bin_start):
    most = 0
    for b in range(bin_start.shape[0] - 1):
        most = max(most, bin_start[b + 1] - bin_start[b])
    return most


@njit(cache=True, inline="always")
def _image_distances(binned, first, last, tx, ty, tz, dist2):
    """Squared distances to the atoms first..last-1 of a bin image: one vector loop."""
    for slot in range(first, last):
        dx = binned[0, slot] + tx
        dy = binned[1, slot] + ty
        dz = binned[2, slot] + tz
        dist2[slot - first] = dx * dx + dy * dy + dz * dz


@njit(cache=True)
def _atom_pairs(a, wrapped, bin_of, bin_start, atoms_by_bin, binned, bin_box, box, pbc, n_bins,
                reach, cutoff2, out_j, out_D, start, capacity, dist2):
    """The pairs of atom a, written from out_j[start], out_D[start] while below `capacity`;
    returns their number. dist2 holds the squared distances of one bin image (room for the
    largest bin). An image of a bin whose atoms' box lies a cutoff or more away from atom a
    has none of its pairs and is skipped (in small cells most of the 27 images)."""
    n_pairs = 0
    b2 = bin_of[a] % n_bins[2]
    b1 = (bin_of[a] // n_bins[2]) % n_bins[1]
    b0 = bin_of[a] // (n_bins[2] * n_bins[1])
    for d0 in range(-reach[0], reach[0] + 1):
        c0, s0 = _wrap_bin(b0 + d0, n_bins[0], pbc[0])
        if c0 < 0:
            continue
        for d1 in range(-reach[1], reach[1] + 1):
            c1, s1 = _wrap_bin(b1 + d1, n_bins[1], pbc[1])
            if c1 < 0:
                continue
            for d2 in range(-reach[2], reach[2] + 1):
                c2, s2 = _wrap_bin(b2 + d2, n_bins[2], pbc[2])
                if c2 < 0:
                    continue
                # lattice translation of this image, relative to atom a
                tx = s0 * box[0, 0] + s1 * box[1, 0] + s2 * box[2, 0] - wrapped[a, 0]
                ty = s0 * box[0, 1] + s1 * box[1, 1] + s2 * box[2, 1] - wrapped[a, 1]
                tz = s0 * box[0, 2] + s1 * box[1, 2] + s2 * box[2, 2] - wrapped[a, 2]
                is_home = s0 == 0 and s1 == 0 and s2 == 0
                nb = (c0 * n_bins[1] + c1) * n_bins[2] + c2
                gap_x = max(bin_box[nb, 0, 0] + tx, 0.0, -bin_box[nb, 1, 0] - tx)
                gap_y = max(bin_box[nb, 0, 1] + ty, 0.0, -bin_box[nb, 1, 1] - ty)
                gap_z = max(bin_box[nb, 0, 2] + tz, 0.0, -bin_box[nb, 1, 2] - tz)
                if gap_x * gap_x + gap_y * gap_y + gap_z * gap_z >= cutoff2:
                    continue
                first, last = bin_start[nb], bin_start[nb + 1]
                _image_distances(binned, first, last, tx, ty, tz, dist2)
                for k in range(last - first):
                    if dist2[k] < cutoff2:
                        slot = first + k
                        b = atoms_by_bin[slot]
                        if is_home and b == a:
                            continue
                        w = start + n_pairs
                        if w < capacity:
                            out_j[w] = b
                            out_D[w, 0] = binned[0, slot] + tx
                            out_D[w, 1] = binned[1, slot] + ty
                            out_D[w, 2] = binned[2, slot] + tz
                        n_pairs += 1
    return n_pairs


@njit(cache=True)
def _scan_bins(positions, box, origin, pbc, n_bins, reach, cutoff, capacity):
    """Cell-list search; writes at most `capacity` pairs and returns the true count."""
    n_atoms = positions.shape[0]
    wrapped, bin_of, bin_start, atoms_by_bin, binned, bin_box = _bin_atoms(positions, box, origin,
                                                                           pbc, n_bins)
    out_i = np.empty(capacity, np.int64)
    out_j = np.empty(capacity, np.int64)
    out_D = np.empty((capacity, 3))
    dist2 = np.empty(_largest_bin(bin_start))
    n_pairs = np.int64(0)        # (a literal 0 would compile a second _atom_pairs for it)
    for a in range(n_atoms):
        found = _atom_pairs(a, wrapped, bin_of, bin_start, atoms_by_bin, binned, bin_box, box,
                            pbc, n_bins, reach, cutoff * cutoff, out_j, out_D, n_pairs, capacity,
                            dist2)
        for k in range(n_pairs, min(n_pairs + found, capacity)):
            out_i[k] = a
        n_pairs += found
    return out_i, out_j, out_D, n_pairs


def _scan_bins_parallel(positions, box, origin, pbc, n_bins, reach, cutoff, volume):
    """`_scan_bins` in CSR form, on threads over blocks of consecutive atoms
    (`mtplib.threads`): each block writes its pairs into its own slice of a buffer sized from
    the mean density (a block that overflows it searches again, writing straight into place:
    its counts are then known), then the slices are copied into place -- the same pairs in
    the same order as serial."""
    n_atoms = positions.shape[0]
    binning = _bin_atoms(positions, box, origin, pbc, n_bins)
    largest = _largest_bin(binning[2])
    n_blocks = min(n_atoms, 64)
    block_start = np.arange(n_blocks + 1, dtype=np.int64) * n_atoms // n_blocks
    room = np.zeros(n_blocks + 1, np.int64)          # buffer slice of each block
    room[1:] = np.cumsum([_pair_capacity(size, volume * size / n_atoms, cutoff)
                          for size in np.diff(block_start)])
    _, buf_j, buf_D = _pair_buffers(room[n_blocks])
    counts = np.empty(n_atoms, np.int64)
    overflow = np.zeros(n_blocks, np.bool_)
    offsets = np.zeros(n_atoms + 1, np.int64)
    args = (block_start, binning, box, pbc, n_bins, reach, cutoff * cutoff, largest, room, buf_j,
            buf_D, counts, overflow, offsets)
    run_chunks(_scan_blocks, n_blocks, False, *args, buf_j, buf_D)      # count, into the buffer
    np.cumsum(counts, out=offsets[1:])
    out_j = np.empty(offsets[n_atoms], np.int64)
    out_D = np.empty((offsets[n_atoms], 3))
    run_chunks(_scan_blocks, n_blocks, True, *args, out_j, out_D)       # into place
    return offsets, out_j, out_D


@njit(cache=True, nogil=True)
def _scan_blocks(lo, hi, place, block_start, binning, box, pbc, n_bins, reach, cutoff2, largest,
                 room, buf_j, buf_D, counts, overflow, offsets, out_j, out_D):
    """Blocks lo..hi-1 of `_scan_bins_parallel`: without `place`, the pairs of each block into
    its slice of the buffer (while they fit), the counts per atom and whether the slice
    overflowed; with `place`, each block's pairs from the buffer into place in out_j, out_D
    (an overflowing block searches again, straight into place)."""
    wrapped, bin_of, bin_start, atoms_by_bin, binned, bin_box = binning
    for blk in range(lo, hi):
        first, last = block_start[blk], block_start[blk + 1]
        if place and not overflow[blk]:
            src = room[blk]
            for k in range(offsets[first], offsets[last]):
                out_j[k] = buf_j[src]
                out_D[k, 0] = buf_D[src, 0]
                out_D[k, 1] = buf_D[src, 1]
                out_D[k, 2] = buf_D[src, 2]
                src += 1
            continue
        dist2 = np.empty(largest)
        used = room[blk]
        for a in range(first, last):
            if place:        # rare: write straight into place (counts are known)
                _atom_pairs(a, wrapped, bin_of, bin_start, atoms_by_bin, binned, bin_box, box,
                            pbc, n_bins, reach, cutoff2, out_j, out_D, offsets[a],
                            offsets[a + 1], dist2)
            else:
                counts[a] = _atom_pairs(a, wrapped, bin_of, bin_start, atoms_by_bin, binned,
                                        bin_box, box, pbc, n_bins, reach, cutoff2, buf_j, buf_D,
                                        used, room[blk + 1], dist2)
                used += counts[a]
        if not place:
            overflow[blk] = used > room[blk + 1]


@njit(cache=True, inline="always")
def _wrap_bin(index, n, periodic):
    """(bin, lattice shift) for a bin index that may lie outside [0, n); bin -1 = no bin."""
    if periodic:
        shift = index // n
        return index - shift * n, shift
    if index < 0 or index >= n:
        return -1, 0
    return index, 0


# --- library backends (cross-checks) -------------------------------------------


def _vesin_list(positions, cell, pbc, cutoff):
    import vesin

    if len(positions) == 0 or cutoff == 0.0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3))
    search = vesin.NeighborList(cutoff=cutoff, full_list=True, sorted=True)
    i, j, D = search.compute(positions, cell, pbc, "ijD")
    order = np.argsort(i, kind="stable")  # vesin sorts already; keep the contract explicit
    return i[order].astype(np.int64), j[order].astype(np.int64), np.ascontiguousarray(D[order])


def _ase_list(positions, cell, pbc, cutoff):
    from ase.neighborlist import primitive_neighbor_list

    if len(positions) == 0 or cutoff == 0.0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3))
    i, j, D = primitive_neighbor_list("ijD", pbc, cell, positions, cutoff, self_interaction=False)
    order = np.argsort(i, kind="stable")
    return i[order].astype(np.int64), j[order].astype(np.int64), D[order]


def groups_by_atoms(images, max_atoms):
    """(first, last) index ranges of consecutive structures with at most `max_atoms` atoms in
    all (a larger structure alone), for batched neighbour searches and evaluation."""
    first = 0
    while first < len(images):
        last, n_atoms = first, 0
        while last < len(images) and (last == first or n_atoms + len(images[last]) <= max_atoms):
            n_atoms += len(images[last])
            last += 1
        yield first, last
        first = last
