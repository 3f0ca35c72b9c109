"""Pure numba kernels of the MTP: arrays in, arrays out (Novikov et al. 2021, sec. 2.1).

Neighbour pairs come in CSR form: the neighbours of atom i are the pairs
p = offsets[i] .. offsets[i+1]-1, with neighbour index `nbr[p]` and vector
`vec[p] = r_j - r_i` (all periodic images within max_dist).

The site energy (eq. 2) is E_i = species_coeffs[t_i] + sum_alpha moment_coeffs[alpha] B_alpha,
with the moments (eq. 3)

    M_{mu,nu}[a,b,c] = sum_j f_mu(r_ij) (x/r)^a (y/r)^b (z/r)^c,
    f_mu(r) = sum_beta radial_coeffs[t_i, t_j, mu, beta] Q_beta(r),
    Q_beta(r) = scaling T_beta(xi) (max_dist - r)^2,  xi = (2r - min - max) / (max - min),

and the contractions of `alpha_index_times`. With MLIP-2's `RBChebyshev_repuls` (`repulsive`)
Q_beta(r < min_dist) = Q_beta(min_dist) with dQ/dr = 0, and each pair closer than min_dist adds
the fixed repulsion of `repulsion_terms` (MLIP-2's `MLMTPR::CalcSiteEnergyDers`).

Gradients are by reverse mode: one forward pass over neighbours and products, one backward
pass. The angular part is shared between radial functions: a basic moment k is (radial
function mu_k) x (angular monomial ang_k).

Layout for speed (timed by benchmarks/bench_evaluate.py): per atom, the radial functions
and the monomials are vectors over the neighbours, so the loops vectorise (reductions may
be reordered: VECTOR_MATH); the products of alpha_index_times run for a chunk of atoms at
once, one vector lane per atom; the backward pass evaluates P_mu = sum_g dE/dM_{mu,g} u^g and
grad P_mu for all neighbours of an atom at once, as vector loops over the neighbours.
"""
import numpy as np
from ..jit import njit

from ..threads import run_chunks


@njit(cache=True, inline="always")
def chebyshev_basis(r, min_dist, max_dist, scaling, vals, ders):
    """Q_beta(r) and dQ_beta/dr for beta < len(vals) (MLIP-2's RBChebyshev)."""
    size = vals.shape[0]
    mult = 2.0 / (max_dist - min_dist)
    xi = (2.0 * r - (min_dist + max_dist)) / (max_dist - min_dist)
    d = r - max_dist
    vals[0] = scaling * d * d
    ders[0] = scaling * 2.0 * d
    if size > 1:
        vals[1] = scaling * xi * d * d
        ders[1] = scaling * (mult * d * d + 2.0 * xi * d)
    for b in range(2, size):
        vals[b] = 2.0 * xi * vals[b - 1] - vals[b - 2]
        ders[b] = 2.0 * (mult * vals[b - 1] + xi * ders[b - 1]) - ders[b - 2]


@njit(cache=True, inline="always")
def radial_basis(r, min_dist, max_dist, scaling, repulsive, vals, ders):
    """`chebyshev_basis`, or MLIP-2's RBChebyshev_repuls when `repulsive`: frozen at
    min_dist below it (r <= min_dist: the values at min_dist, zero derivatives)."""
    if repulsive and r <= min_dist:
        chebyshev_basis(min_dist, min_dist, max_dist, scaling, vals, ders)
        for b in range(vals.shape[0]):
            ders[b] = 0.0
    else:
        chebyshev_basis(r, min_dist, max_dist, scaling, vals, ders)


# MLIP-2's repulsive core (RBChebyshev_repuls): per pair closer than min_dist, the site energy
# gains REPULSION_STRENGTH (exp(-REPULSION_DECAY (r - 1)) - exp(-REPULSION_DECAY (min_dist - 1)))
REPULSION_STRENGTH = 10000.0    # eV
REPULSION_DECAY = 10.0          # 1/Å


@njit(cache=True)
def repulsion_terms(atom_start, offsets, nbr, vec, min_dist, site_energy, forces, virial):
    """Add MLIP-2's repulsive core to the site energies, forces F = -dE/dr and virials
    sum_p vec_p (x) dE/dvec_p (in place) of structures c = atoms atom_start[c]..atom_start[c+1]-1
    of one CSR list (virial: (n_structures, 3, 3)); forces of shape (0, 3) skip forces and
    virials. Returns the number of pairs closer than min_dist."""
    n_close = 0
    with_forces = forces.shape[0] > 0
    e_min = np.exp(-REPULSION_DECAY * (min_dist - 1.0))
    for c in range(atom_start.shape[0] - 1):
        for i in range(atom_start[c], atom_start[c + 1]):
            for p in range(offsets[i], offsets[i + 1]):
                x, y, z = vec[p, 0], vec[p, 1], vec[p, 2]
                r = np.sqrt(x * x + y * y + z * z)
                if r >= min_dist:
                    continue
                n_close += 1
                e = np.exp(-REPULSION_DECAY * (r - 1.0))
                site_energy[i] += REPULSION_STRENGTH * (e - e_min)
                if not with_forces:
                    continue
                g = -REPULSION_DECAY * REPULSION_STRENGTH * e / r     # dE/dr / r
                j = nbr[p]
                for a in range(3):
                    ga = g * vec[p, a]
                    forces[i, a] += ga
                    forces[j, a] -= ga
                    for b in range(3):
                        virial[c, a, b] += ga * vec[p, b]
    return n_close


@njit(cache=True, inline="always")
def _unit_powers(ux, uy, uz, max_nu, pw):
    pw[0, 0] = 1.0
    pw[1, 0] = 1.0
    pw[2, 0] = 1.0
    for n in range(1, max_nu + 1):
        pw[0, n] = pw[0, n - 1] * ux
        pw[1, n] = pw[1, n - 1] * uy
        pw[2, n] = pw[2, n - 1] * uz


@njit(cache=True, inline="always")
def _monomial_index(a, b, c):
    """Position of u^(a,b,c) in the canonical order: degree, then a and b descending."""
    n = a + b + c
    m = n - a
    return n * (n + 1) * (n + 2) // 6 + m * (m + 1) // 2 + (m - b)


# Reductions over the neighbours of one atom may be reordered (vectorised); nothing else is
# relaxed: no assumptions about NaN or infinity, so bad input still shows as NaN.
VECTOR_MATH = {"reassoc", "contract"}
# neighbour lists are padded to a multiple of this: two AVX2 vectors (16 would pad more)
PAD = 8


@njit(cache=True)
def basis_tables(ang_abc, basic_mu, n_mu):
    """Per monomial h: the recursion u^h = u^parent u_axis, and per axis the raised monomial
    h + e_axis (-1 beyond the top degree) and its exponent along that axis, so that
    d u^g / d u_axis = exp * u^h for g = raise(h); per radial function mu the block start of
    its basic moments, and how many of its monomials lie below its top degree (the terms of
    grad P_mu)."""
    n_ang = ang_abc.shape[0]
    top = 0
    raise_idx = np.full((3, n_ang), -1, dtype=np.int64)
    raise_exp = np.zeros((3, n_ang))
    for h in range(n_ang):
        a, b, c = ang_abc[h, 0], ang_abc[h, 1], ang_abc[h, 2]
        top = max(top, a + b + c)
    parent = np.zeros(n_ang, dtype=np.int64)
    axis = np.zeros(n_ang, dtype=np.int64)
    for h in range(n_ang):
        a, b, c = ang_abc[h, 0], ang_abc[h, 1], ang_abc[h, 2]
        if a > 0:
            parent[h], axis[h] = _monomial_index(a - 1, b, c), 0
        elif b > 0:
            parent[h], axis[h] = _monomial_index(a, b - 1, c), 1
        elif c > 0:
            parent[h], axis[h] = _monomial_index(a, b, c - 1), 2
        if a + b + c < top:
            raise_idx[0, h] = _monomial_index(a + 1, b, c)
            raise_idx[1, h] = _monomial_index(a, b + 1, c)
            raise_idx[2, h] = _monomial_index(a, b, c + 1)
            raise_exp[0, h] = a + 1
            raise_exp[1, h] = b + 1
            raise_exp[2, h] = c + 1
    mu_start = np.zeros(n_mu + 1, dtype=np.int64)
    for k in range(basic_mu.shape[0]):
        mu_start[basic_mu[k] + 1] += 1
    for mu in range(n_mu):
        mu_start[mu + 1] += mu_start[mu]
    count_low = np.empty(n_mu, dtype=np.int64)
    for mu in range(n_mu):
        degree = 0
        for g in range(mu_start[mu + 1] - mu_start[mu]):
            degree = max(degree, ang_abc[g, 0] + ang_abc[g, 1] + ang_abc[g, 2])
        count_low[mu] = degree * (degree + 1) * (degree + 2) // 6
    return parent, axis, raise_idx, raise_exp, mu_start, count_low


@njit(cache=True, inline="always")
def _has_neighbour_of(species, nbr_type, n_p):
    for m in range(n_p):
        if nbr_type[m] == species:
            return True
    return False


@njit(cache=True)
def _freeze_below_min_dist(vec, p0, n_p, scaling, min_dist, max_dist, xi, pair_q, pair_dq, n_b):
    """RBChebyshev_repuls for the neighbours m < n_p with r <= min_dist: xi, Q_0, Q_1 at
    r = min_dist and zero dQ_b/dr for b < n_b (MLIP-2's RadialBasis_Chebyshev_repuls::RB_Calc)."""
    cheb_mult = 2.0 / (max_dist - min_dist)
    for m in range(n_p):
        x, y, z = vec[p0 + m, 0], vec[p0 + m, 1], vec[p0 + m, 2]
        if np.sqrt(x * x + y * y + z * z) > min_dist:
            continue
        xm = (2.0 * min_dist - (min_dist + max_dist)) * cheb_mult * 0.5
        xi[m] = xm
        d = min_dist - max_dist
        pair_q[0, m] = scaling * d * d
        pair_q[1, m] = scaling * xm * d * d
        for b in range(n_b):
            pair_dq[b, m] = 0.0


@njit(cache=True, fastmath=VECTOR_MATH)
def _pair_radial(vec, p0, n_p, n_pad, nbr_type, ti, radial_coeffs, scaling, min_dist, max_dist,
                 repulsive, inv_r, unit, xi, pair_q, pair_dq, pair_f, pair_fp):
    """Per neighbour m of one atom: 1/r, the unit vector, Q_b(r), dQ_b/dr, f_mu(r), f'_mu(r)
    (eq. 4); `repulsive`: Q_b frozen at min_dist below it (`radial_basis`).

    Vector loops over the neighbours; those from n_p to n_pad are padding with zeros."""
    rb_size = pair_q.shape[0]
    n_species = radial_coeffs.shape[1]
    n_mu = pair_f.shape[0]
    cheb_mult = 2.0 / (max_dist - min_dist)
    for m in range(n_p):
        x, y, z = vec[p0 + m, 0], vec[p0 + m, 1], vec[p0 + m, 2]
        r = np.sqrt(x * x + y * y + z * z)
        ir = 1.0 / r
        inv_r[m] = ir
        unit[0, m] = x * ir
        unit[1, m] = y * ir
        unit[2, m] = z * ir
        xm = (2.0 * r - (min_dist + max_dist)) * cheb_mult * 0.5
        xi[m] = xm
        d = r - max_dist
        pair_q[0, m] = scaling * d * d
        pair_dq[0, m] = scaling * 2.0 * d
        pair_q[1, m] = scaling * xm * d * d
        pair_dq[1, m] = scaling * (cheb_mult * d * d + 2.0 * xm * d)
    if repulsive:
        _freeze_below_min_dist(vec, p0, n_p, scaling, min_dist, max_dist, xi, pair_q, pair_dq, 2)
    for m in range(n_p, n_pad):
        nbr_type[m] = -1
        inv_r[m] = 0.0
        unit[0, m] = 0.0
        unit[1, m] = 0.0
        unit[2, m] = 0.0
        xi[m] = 0.0
        pair_q[0, m] = 0.0
        pair_dq[0, m] = 0.0
        pair_q[1, m] = 0.0
        pair_dq[1, m] = 0.0
    for b in range(2, rb_size):
        for m in range(n_pad):
            pair_q[b, m] = 2.0 * xi[m] * pair_q[b - 1, m] - pair_q[b - 2, m]
            pair_dq[b, m] = (2.0 * (cheb_mult * pair_q[b - 1, m] + xi[m] * pair_dq[b - 1, m])
                             - pair_dq[b - 2, m])
    if repulsive:
        _freeze_below_min_dist(vec, p0, n_p, scaling, min_dist, max_dist, xi, pair_q, pair_dq,
                               rb_size)
    for mu in range(n_mu):
        for m in range(n_pad):
            pair_f[mu, m] = 0.0
            pair_fp[mu, m] = 0.0
    # f_mu = sum_b c[ti, tj, mu, b] Q_b, one neighbour species at a time (no gathers)
    for tj in range(n_species):
        if not _has_neighbour_of(tj, nbr_type, n_p):
            continue
        for mu in range(n_mu):
            for b in range(rb_size):
                c = radial_coeffs[ti, tj, mu, b]
                for m in range(n_pad):
                    sel = c if nbr_type[m] == tj else 0.0
                    pair_f[mu, m] += sel * pair_q[b, m]
                    pair_fp[mu, m] += sel * pair_dq[b, m]


@njit(cache=True, fastmath=VECTOR_MATH)
def _monomials(unit, parent, axis, n_pad, mono):
    """u^g of every neighbour (vectors over neighbours), by the recursion u^g = u^parent u_axis."""
    for m in range(n_pad):
        mono[0, m] = 1.0
    for g in range(1, mono.shape[0]):
        pg = parent[g]
        ax = axis[g]
        for m in range(n_pad):
            mono[g, m] = mono[pg, m] * unit[ax, m]


@njit(cache=True, fastmath=VECTOR_MATH)
def _basic_moments(pair_f, mono, mu_start, n_pad, lane, moments):
    """M_{mu, g} = sum_p f_mu(r_p) u_p^g   (eq. 3), as dot products over the neighbours,
    into column `lane` of moments."""
    for mu in range(pair_f.shape[0]):
        base = mu_start[mu]
        for g in range(mu_start[mu + 1] - base):
            acc = 0.0
            for m in range(n_pad):
                acc += pair_f[mu, m] * mono[g, m]
            moments[base + g, lane] = acc


@njit(cache=True)
def product_runs(times):
    """alpha_index_times as runs of one target: run r writes run_target[r] from the products
    run_start[r] .. run_start[r+1]-1 of factors factor_a, factor_b with multiplicity mult."""
    n_times = times.shape[0]
    n_runs = 0
    for t in range(n_times):
        if t == 0 or times[t, 3] != times[t - 1, 3]:
            n_runs += 1
    run_start = np.empty(n_runs + 1, dtype=np.int64)
    run_target = np.empty(n_runs, dtype=np.int64)
    factor_a = np.empty(n_times, dtype=np.int64)
    factor_b = np.empty(n_times, dtype=np.int64)
    mult = np.empty(n_times)
    r = 0
    for t in range(n_times):
        if t == 0 or times[t, 3] != times[t - 1, 3]:
            run_start[r] = t
            run_target[r] = times[t, 3]
            r += 1
        factor_a[t] = times[t, 0]
        factor_b[t] = times[t, 1]
        mult[t] = times[t, 2]
    run_start[n_runs] = n_times
    return run_start, run_target, factor_a, factor_b, mult


@njit(cache=True)
def kernel_tables(ang_abc, basic_mu, n_mu, times):
    """The index tables `_mtp_block` takes, built once per potential: `basis_tables` and
    `product_runs` in one tuple."""
    parent, axis, raise_idx, raise_exp, mu_start, count_low = basis_tables(ang_abc, basic_mu, n_mu)
    run_start, run_target, factor_a, factor_b, mult = product_runs(times)
    return (parent, axis, raise_idx, raise_exp, mu_start, count_low, run_start, run_target,
            factor_a, factor_b, mult)


@njit(cache=True)
def _products_forward(run_start, run_target, factor_a, factor_b, mult, n_basic, n_lanes, moments):
    """The contractions of alpha_index_times for a chunk of atoms at once: moments[k, lane],
    one lane per atom, so every product is one vector operation over the lanes."""
    for k in range(n_basic, moments.shape[0]):
        for lane in range(n_lanes):
            moments[k, lane] = 0.0
    for r in range(run_target.shape[0]):
        k = run_target[r]
        for t in range(run_start[r], run_start[r + 1]):
            c = mult[t]
            a = factor_a[t]
            b = factor_b[t]
            for lane in range(n_lanes):
                moments[k, lane] += c * moments[a, lane] * moments[b, lane]


@njit(cache=True)
def _products_backward(run_start, run_target, factor_a, factor_b, mult, mapping, moment_coeffs,
                       n_lanes, moments, dmom):
    """dE_i/dM for every moment of a chunk of atoms (lanes), from E_i = sum_s c_s M_mapping[s]
    back through the products."""
    for k in range(dmom.shape[0]):
        for lane in range(n_lanes):
            dmom[k, lane] = 0.0
    for s in range(mapping.shape[0]):
        for lane in range(n_lanes):
            dmom[mapping[s], lane] += moment_coeffs[s]
    for r in range(run_target.shape[0] - 1, -1, -1):
        k = run_target[r]
        for t in range(run_start[r + 1] - 1, run_start[r] - 1, -1):
            c = mult[t]
            a = factor_a[t]
            b = factor_b[t]
            for lane in range(n_lanes):
                w = dmom[k, lane] * c
                dmom[a, lane] += w * moments[b, lane]
                dmom[b, lane] += w * moments[a, lane]


@njit(cache=True)
def _angular_coefficients(dmom, lane, mu_start, count_low, raise_idx, raise_exp, coef_p, coef_g):
    """Per mu the polynomial P_mu(u) = sum_g dE/dM_{mu,g} u^g and its gradient as coefficients
    over the monomials: coef_p[mu, h] of P, coef_g[mu, axis, h] of dP/du_axis, for the atom in
    column `lane` of dmom. The gradient has no terms of the top degree of mu (h >= count_low[mu]).
    Entries beyond those written stay zero: they pad the sweeps of `_pairs_backward`."""
    for mu in range(coef_p.shape[0]):
        base = mu_start[mu]
        for h in range(mu_start[mu + 1] - base):
            coef_p[mu, h] = dmom[base + h, lane]
        for h in range(count_low[mu]):
            for ax in range(3):
                coef_g[mu, ax, h] = raise_exp[ax, h] * dmom[base + raise_idx[ax, h], lane]


@njit(cache=True, fastmath=VECTOR_MATH)
def _pairs_backward(n_pad, mono, coef_p, coef_g, mu_start, count_low, pair_f, pair_fp, unit,
                    inv_r, s_mu, poly, out):
    """dE_i/d(vec) of every neighbour into out[axis, m], and s_mu[mu, m] = P_mu(u_m):
    d/d(vec) of f(r) P(u) = f'(r) P u + f(r)/r (grad P - (u . grad P) u).

    P and grad P of all neighbours at once: vector loops over the neighbours, four
    monomials per sweep (the coefficients are zero-padded to multiples of four)."""
    for k in range(4):
        for m in range(n_pad):
            out[k, m] = 0.0
    for mu in range(coef_p.shape[0]):
        for k in range(4):
            for m in range(n_pad):
                poly[k, m] = 0.0
        low = (count_low[mu] + 3) // 4 * 4
        high = (mu_start[mu + 1] - mu_start[mu] + 3) // 4 * 4
        for h in range(0, low, 4):
            a0, a1, a2, a3 = coef_p[mu, h], coef_p[mu, h + 1], coef_p[mu, h + 2], coef_p[mu, h + 3]
            b0, b1, b2, b3 = (coef_g[mu, 0, h], coef_g[mu, 0, h + 1], coef_g[mu, 0, h + 2],
                              coef_g[mu, 0, h + 3])
            c0, c1, c2, c3 = (coef_g[mu, 1, h], coef_g[mu, 1, h + 1], coef_g[mu, 1, h + 2],
                              coef_g[mu, 1, h + 3])
            d0, d1, d2, d3 = (coef_g[mu, 2, h], coef_g[mu, 2, h + 1], coef_g[mu, 2, h + 2],
                              coef_g[mu, 2, h + 3])
            for m in range(n_pad):
                x0, x1, x2, x3 = mono[h, m], mono[h + 1, m], mono[h + 2, m], mono[h + 3, m]
                poly[0, m] += a0 * x0 + a1 * x1 + a2 * x2 + a3 * x3
                poly[1, m] += b0 * x0 + b1 * x1 + b2 * x2 + b3 * x3
                poly[2, m] += c0 * x0 + c1 * x1 + c2 * x2 + c3 * x3
                poly[3, m] += d0 * x0 + d1 * x1 + d2 * x2 + d3 * x3
        for h in range(low, high, 4):
            a0, a1, a2, a3 = coef_p[mu, h], coef_p[mu, h + 1], coef_p[mu, h + 2], coef_p[mu, h + 3]
            for m in range(n_pad):
                poly[0, m] += (a0 * mono[h, m] + a1 * mono[h + 1, m] + a2 * mono[h + 2, m]
                               + a3 * mono[h + 3, m])
        for m in range(n_pad):
            s_mu[mu, m] = poly[0, m]
            out[0, m] += pair_fp[mu, m] * poly[0, m]
            out[1, m] += pair_f[mu, m] * poly[1, m]
            out[2, m] += pair_f[mu, m] * poly[2, m]
            out[3, m] += pair_f[mu, m] * poly[3, m]
    for m in range(n_pad):
        ux, uy, uz, ir = unit[0, m], unit[1, m], unit[2, m], inv_r[m]
        fr, fx, fy, fz = out[0, m], out[1, m], out[2, m], out[3, m]
        euler = ux * fx + uy * fy + uz * fz          # u . grad P = nu P, termwise
        out[0, m] = fr * ux + (fx - euler * ux) * ir
        out[1, m] = fr * uy + (fy - euler * uy) * ir
        out[2, m] = fr * uz + (fz - euler * uz) * ir


@njit(cache=True, fastmath=VECTOR_MATH)
def _radial_coeff_gradient(ti, n_species, nbr_type, n_p, n_pad, s_mu, pair_q, grad_row):
    """dE_i/d radial_coeffs[ti, tj, mu, b] += sum_p Q_b(r_p) s_mu(p) over the neighbours of
    species tj, as dot products over the neighbours (padding has Q = 0)."""
    n_mu = s_mu.shape[0]
    rb_size = pair_q.shape[0]
    for tj in range(n_species):
        if not _has_neighbour_of(tj, nbr_type, n_p):
            continue
        base = (ti * n_species + tj) * n_mu * rb_size
        for mu in range(n_mu):
            for b in range(rb_size):
                acc = 0.0
                for m in range(n_pad):
                    sel = s_mu[mu, m] if nbr_type[m] == tj else 0.0
                    acc += sel * pair_q[b, m]
                grad_row[base + mu * rb_size + b] += acc


# Atoms whose products go through alpha_index_times together, one vector lane each (the
# lane count compared in benchmarks/RESULTS.md, bench_evaluate.py).
CHUNK = 32


@njit(cache=True)
def _mtp_block(first, last, want_forces, want_params, per_atom, row, types, offsets, nbr, vec,
               radial_coeffs, scaling, min_dist, max_dist, repulsive, basic_mu, basic_ang, ang_abc,
               times, mapping, species_coeffs, moment_coeffs, n_moments, tables, site_energy,
               pair_grad, grad):
    """The MTP of atoms first..last-1: site energies, and optionally dE_i/d(vec_p) and dE_i/dtheta.

    Takes the basis in `MTPotential.kernel_arrays`' canonical layout: the basic moments of
    radial function mu are the block mu_start[mu] + g, g < count[mu], over the monomials
    ang_abc[g] in canonical order (all monomials up to a top degree), and its index tables
    (`kernel_tables`).

    Atoms go in chunks of CHUNK. Per atom: radial functions, monomials and basic moments as
    vector loops over the neighbours; the radial values and monomials are kept for the
    chunk. Then the products of alpha_index_times run forward and backward for the whole
    chunk at once, one vector lane per atom. Then per atom again: P_mu = sum_g dE/dM_{mu,g} u^g
    and grad P_mu of all neighbours, as vector loops over the neighbours. Neighbour lists and
    monomial tables are padded with zeros to multiples of PAD so that the vector loops have
    no scalar remainder. Evaluation,
    parameter gradients and grading all run this code, so their energies and forces agree
    bit for bit. dE_i/dtheta goes to grad[i] (per_atom) or grad[row].
    """
    n_species = radial_coeffs.shape[0]
    n_mu = radial_coeffs.shape[2]
    rb_size = radial_coeffs.shape[3]
    n_radial = n_species * n_species * n_mu * rb_size
    n_ang = ang_abc.shape[0]
    n_ang_pad = (n_ang + PAD - 1) // PAD * PAD
    n_basic = basic_mu.shape[0]
    (parent, axis, raise_idx, raise_exp, mu_start, count_low, run_start, run_target, factor_a,
     factor_b, mult) = tables
    max_pairs = 0
    for i in range(first, last):
        max_pairs = max(max_pairs, offsets[i + 1] - offsets[i])
    max_pairs = (max_pairs + PAD - 1) // PAD * PAD
    lanes = min(CHUNK, max(1, last - first))
    backward = want_forces or want_params
    # per atom of the chunk: what the backward pass needs of the forward pass
    nbr_type = np.empty((lanes, max_pairs), dtype=np.int64)
    inv_r = np.empty((lanes, max_pairs))
    unit = np.empty((lanes, 3, max_pairs))
    pair_q = np.empty((lanes, rb_size, max_pairs))
    pair_f = np.empty((lanes, n_mu, max_pairs))
    pair_fp = np.empty((lanes, n_mu, max_pairs))
    # monomials u^g of the neighbours (vectors over neighbours); rows beyond n_ang stay zero
    mono = np.empty((lanes if backward else 1, n_ang_pad, max_pairs))
    mono[:, n_ang:, :] = 0.0
    # per atom, reused
    xi = np.empty(max_pairs)
    pair_dq = np.empty((rb_size, max_pairs))
    coef_p = np.zeros((n_mu, n_ang_pad))
    coef_g = np.zeros((n_mu, 3, n_ang_pad))
    s_mu = np.empty((n_mu, max_pairs))
    poly = np.empty((4, max_pairs))
    pair_out = np.empty((4, max_pairs))
    # per chunk, one lane per atom
    moments = np.empty((n_moments, lanes))
    dmom = np.empty((n_moments, lanes))
    for c0 in range(first, last, lanes):
        n_lanes = min(lanes, last - c0)
        for lane in range(n_lanes):
            i = c0 + lane
            p0 = offsets[i]
            n_p = offsets[i + 1] - p0
            n_pad = (n_p + PAD - 1) // PAD * PAD
            for m in range(n_p):
                nbr_type[lane, m] = types[nbr[p0 + m]]
            _pair_radial(vec, p0, n_p, n_pad, nbr_type[lane], types[i], radial_coeffs, scaling,
                         min_dist, max_dist, repulsive, inv_r[lane], unit[lane], xi, pair_q[lane],
                         pair_dq, pair_f[lane], pair_fp[lane])
            mono_lane = mono[lane if backward else 0, :n_ang]
            _monomials(unit[lane], parent, axis, n_pad, mono_lane)
            _basic_moments(pair_f[lane], mono_lane, mu_start, n_pad, lane, moments)
        _products_forward(run_start, run_target, factor_a, factor_b, mult, n_basic, n_lanes,
                          moments)
        for lane in range(n_lanes):
            i = c0 + lane
            ti = types[i]
            energy = species_coeffs[ti]                     # site energy, eq. 2
            for s in range(mapping.shape[0]):
                energy += moment_coeffs[s] * moments[mapping[s], lane]
            site_energy[i] = energy
            if want_params:
                out = i if per_atom else row
                for s in range(mapping.shape[0]):
                    grad[out, n_radial + n_species + s] += moments[mapping[s], lane]   # = B_alpha
                grad[out, n_radial + ti] += 1.0
        if not backward:
            continue
        _products_backward(run_start, run_target, factor_a, factor_b, mult, mapping,
                           moment_coeffs, n_lanes, moments, dmom)
        for lane in range(n_lanes):
            i = c0 + lane
            p0 = offsets[i]
            n_p = offsets[i + 1] - p0
            n_pad = (n_p + PAD - 1) // PAD * PAD
            _angular_coefficients(dmom, lane, mu_start, count_low, raise_idx, raise_exp, coef_p,
                                  coef_g)
            _pairs_backward(n_pad, mono[lane], coef_p, coef_g, mu_start, count_low, pair_f[lane],
                            pair_fp[lane], unit[lane], inv_r[lane], s_mu, poly, pair_out)
            if want_forces:
                for m in range(n_p):
                    pair_grad[p0 + m, 0] = pair_out[0, m]
                    pair_grad[p0 + m, 1] = pair_out[1, m]
                    pair_grad[p0 + m, 2] = pair_out[2, m]
            if want_params:
                _radial_coeff_gradient(types[i], n_species, nbr_type[lane], n_p, n_pad, s_mu,
                                       pair_q[lane], grad[i if per_atom else row])


@njit(cache=True)
def incoming_pairs(n_atoms, nbr):
    """The pairs that point at each atom, in CSR form: the p with nbr[p] == j are
    in_pairs[in_start[j]:in_start[j+1]], ascending."""
    in_start = np.zeros(n_atoms + 1, dtype=np.int64)
    for p in range(nbr.shape[0]):
        in_start[nbr[p] + 1] += 1
    for j in range(n_atoms):
        in_start[j + 1] += in_start[j]
    fill = in_start[:-1].copy()
    in_pairs = np.empty(nbr.shape[0], dtype=np.int64)
    for p in range(nbr.shape[0]):
        j = nbr[p]
        in_pairs[fill[j]] = p
        fill[j] += 1
    return in_start, in_pairs


@njit(cache=True, inline="always")
def _gather_forces(first, last, offsets, in_start, in_pairs, vec, pair_grad, forces, virial):
    """F_i = sum over i's pairs of dE/dvec_p minus the sum over the pairs pointing at i, for
    atoms first..last-1, each summed in a fixed order (no scatter: blocks run in parallel and
    the result does not depend on the threads); the virial of i's pairs is added to `virial`."""
    for i in range(first, last):
        fx = 0.0
        fy = 0.0
        fz = 0.0
        for p in range(offsets[i], offsets[i + 1]):
            gx, gy, gz = pair_grad[p, 0], pair_grad[p, 1], pair_grad[p, 2]
            fx += gx
            fy += gy
            fz += gz
            for b in range(3):
                virial[0, b] += vec[p, b] * gx
                virial[1, b] += vec[p, b] * gy
                virial[2, b] += vec[p, b] * gz
        for k in range(in_start[i], in_start[i + 1]):
            q = in_pairs[k]
            fx -= pair_grad[q, 0]
            fy -= pair_grad[q, 1]
            fz -= pair_grad[q, 2]
        forces[i, 0] = fx
        forces[i, 1] = fy
        forces[i, 2] = fz


@njit(cache=True)
def mtp_serial(types, offsets, nbr, vec, radial_coeffs, scaling, min_dist, max_dist, repulsive,
               basic_mu, basic_ang, ang_abc, times, mapping, species_coeffs, moment_coeffs,
               n_moments, want_forces, want_params, per_atom, tables):
    """Site energies, forces, virial and dE/dtheta rows on one thread (small cells).

    Forces F = -dE/dr and the virial sum_p vec_p (x) dE/dvec_p are (0, 3) and zero without
    `want_forces`. Rows: (n_atoms, n_params) per atom, else (1, n_params) summed over atoms;
    (0, 0) without `want_params`. Evaluation and grading both call this one compiled function
    (or `mtp_parallel`), so their energies and forces agree bit for bit.
    """
    n_atoms = types.shape[0]
    n_params = radial_coeffs.size + radial_coeffs.shape[0] + mapping.shape[0]
    site_energy = np.empty(n_atoms)
    pair_grad = np.empty((vec.shape[0] if want_forces else 0, 3))     # every pair is written
    grad = np.zeros(((n_atoms if per_atom else 1) if want_params else 0,
                     n_params if want_params else 0))
    _mtp_block(np.int64(0), n_atoms, want_forces, want_params, per_atom, np.int64(0), types,
               offsets, nbr, vec, radial_coeffs, scaling, min_dist, max_dist, repulsive, basic_mu,
               basic_ang, ang_abc, times, mapping, species_coeffs, moment_coeffs, n_moments,
               tables, site_energy, pair_grad, grad)
    forces = np.zeros((n_atoms if want_forces else 0, 3))
    virial = np.zeros((3, 3))
    if want_forces:
        in_start, in_pairs = incoming_pairs(n_atoms, nbr)
        _gather_forces(0, n_atoms, offsets, in_start, in_pairs, vec, pair_grad, forces, virial)
    return site_energy, forces, virial, grad


@njit(cache=True, nogil=True)
def _mtp_block_range(lo, hi, block_start, want_forces, want_params, per_atom, types, offsets,
                     nbr, vec, radial_coeffs, scaling, min_dist, max_dist, repulsive, basic_mu,
                     basic_ang, ang_abc, times, mapping, species_coeffs, moment_coeffs, n_moments,
                     tables, site_energy, pair_grad, grad):
    """`_mtp_block` of blocks lo..hi-1 (`mtp_blocks`)."""
    for blk in range(lo, hi):
        _mtp_block(block_start[blk], block_start[blk + 1], want_forces, want_params, per_atom,
                   np.int64(blk), types, offsets, nbr, vec, radial_coeffs, scaling, min_dist,
                   max_dist, repulsive, basic_mu, basic_ang, ang_abc, times, mapping,
                   species_coeffs, moment_coeffs, n_moments, tables, site_energy, pair_grad, grad)


@njit(cache=True, nogil=True)
def _gather_block_range(lo, hi, block_start, offsets, in_start, in_pairs, vec, pair_grad, forces,
                        block_virial):
    """`_gather_forces` of blocks lo..hi-1, each block's virial into block_virial[blk]."""
    for blk in range(lo, hi):
        _gather_forces(block_start[blk], block_start[blk + 1], offsets, in_start, in_pairs, vec,
                       pair_grad, forces, block_virial[blk])


def mtp_blocks(types, offsets, nbr, vec, radial_coeffs, scaling, min_dist, max_dist, repulsive,
               basic_mu, basic_ang, ang_abc, times, mapping, species_coeffs, moment_coeffs,
               n_moments, want_forces, want_params, per_atom, tables, block_start, block_cfg,
               n_cfg):
    """As `mtp_serial`, over blocks of consecutive atoms on numba's thread count
    (`mtplib.threads`): block b is atoms block_start[b] .. block_start[b+1]-1 of structure
    block_cfg[b] (non-decreasing). The one multi-threaded kernel: a large structure split into
    blocks (`mtp_parallel`) or many structures of one block each (`mtp_batch`). Rows are per
    atom, or per block when not per atom. The forces are gathered per atom in a second pass
    over the blocks and each structure's virial (n_cfg, 3, 3) is summed over its blocks in
    block order: the result does not depend on the threads."""
    n_atoms = types.shape[0]
    n_blocks = block_start.shape[0] - 1
    n_params = radial_coeffs.size + radial_coeffs.shape[0] + mapping.shape[0]
    site_energy = np.empty(n_atoms)
    pair_grad = np.empty((vec.shape[0] if want_forces else 0, 3))     # every pair is written
    grad = np.zeros(((n_atoms if per_atom else n_blocks) if want_params else 0,
                     n_params if want_params else 0))
    run_chunks(_mtp_block_range, n_blocks, block_start, want_forces, want_params, per_atom, types,
               offsets, nbr, vec, radial_coeffs, scaling, min_dist, max_dist, repulsive, basic_mu,
               basic_ang, ang_abc, times, mapping, species_coeffs, moment_coeffs, n_moments,
               tables, site_energy, pair_grad, grad)
    forces = np.zeros((n_atoms if want_forces else 0, 3))
    virial = np.zeros((n_cfg, 3, 3))
    if want_forces:
        in_start, in_pairs = incoming_pairs(n_atoms, nbr)
        block_virial = np.zeros((n_blocks, 3, 3))
        run_chunks(_gather_block_range, n_blocks, block_start, offsets, in_start, in_pairs, vec,
                   pair_grad, forces, block_virial)
        np.add.at(virial, block_cfg, block_virial)      # in block order
    return site_energy, forces, virial, grad


def mtp_parallel(types, offsets, nbr, vec, radial_coeffs, scaling, min_dist, max_dist, repulsive,
                 basic_mu, basic_ang, ang_abc, times, mapping, species_coeffs, moment_coeffs,
                 n_moments, want_forces, want_params, per_atom, tables, n_blocks):
    """As `mtp_serial`, parallel over n_blocks blocks of atoms (`mtp_blocks`); rows summed
    per block when not per atom."""
    n_atoms = types.shape[0]
    n_blocks = max(1, min(n_blocks, n_atoms))
    block_start = np.arange(n_blocks + 1, dtype=np.int64) * n_atoms // n_blocks
    site_energy, forces, virial, grad = mtp_blocks(
        types, offsets, nbr, vec, radial_coeffs, scaling, min_dist, max_dist, repulsive, basic_mu,
        basic_ang, ang_abc, times, mapping, species_coeffs, moment_coeffs, n_moments,
        want_forces, want_params, per_atom, tables, block_start,
        np.zeros(n_blocks, dtype=np.int64), 1)
    return site_energy, forces, virial[0], grad


def mtp_batch(types, offsets, nbr, vec, radial_coeffs, scaling, min_dist, max_dist, repulsive,
              basic_mu, basic_ang, ang_abc, times, mapping, species_coeffs, moment_coeffs,
              n_moments, tables, atom_start):
    """Site energies, forces and one virial per structure for many structures joined in one
    neighbour list (structure c: atoms atom_start[c] .. atom_start[c+1]-1), on threads over
    the structures (`mtp_blocks`, a block per structure). Per structure the arithmetic is that
    of `mtp_serial`, so the site energies, forces and virials equal it bit for bit."""
    n_cfg = atom_start.shape[0] - 1
    site_energy, forces, virial, _ = mtp_blocks(
        types, offsets, nbr, vec, radial_coeffs, scaling, min_dist, max_dist, repulsive, basic_mu,
        basic_ang, ang_abc, times, mapping, species_coeffs, moment_coeffs, n_moments,
        True, False, False, tables, atom_start, np.arange(n_cfg), n_cfg)
    return site_energy, forces, virial
