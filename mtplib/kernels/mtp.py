"""Pure numba kernels of the MTP: arrays in, arrays out (Novikov et al. 2021, sec. 2.1).

Neighbour pairs come in CSR form: the neighbours of atom i are the pairs
p = offsets[i] .. offsets[i+1]-1, with neighbour index `nbr[p]` and vector
`vec[p] = r_j - r_i` (all periodic images within max_dist).

The site energy (eq. 2) is E_i = species_coeffs[t_i] + sum_alpha moment_coeffs[alpha] B_alpha,
with the moments (eq. 3)

    M_{mu,nu}[a,b,c] = sum_j f_mu(r_ij) (x/r)^a (y/r)^b (z/r)^c,
    f_mu(r) = sum_beta radial_coeffs[t_i, t_j, mu, beta] Q_beta(r),
    Q_beta(r) = scaling T_beta(xi) (max_dist - r)^2,  xi = (2r - min - max) / (max - min),

and the contractions of `alpha_index_times`. Gradients are by reverse mode: one forward
pass over neighbours and products, one backward pass. The angular part is shared between
radial functions: a basic moment k is (radial function mu_k) x (angular monomial ang_k).
"""
import numpy as np
from numba import njit, prange


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


@njit(cache=True)
def _mtp_block(first, last, want_forces, want_params, per_atom, row, types, offsets, nbr, vec,
               radial_coeffs, scaling, min_dist, max_dist, basic_mu, basic_ang, ang_abc, times,
               mapping, species_coeffs, moment_coeffs, n_moments, site_energy, pair_grad, grad):
    """The MTP of atoms first..last-1: site energies, and optionally dE_i/d(vec_p) and dE_i/dtheta.

    Takes the basis in `MTPotential.kernel_arrays`' canonical layout: the basic moments of
    radial function mu are the block mu_start[mu] + g, g < count[mu], over the monomials
    ang_abc[g] in canonical order, so per neighbour the forward pass is a contiguous
    axpy and the backward pass an axpy and a dot. One forward pass per atom caches
    f_mu, f'_mu, Q_b and the monomials of its pairs; the backward pass reuses them.
    Evaluation, parameter gradients and grading all run this code, so their energies and
    forces agree bit for bit. dE_i/dtheta goes to grad[i] (per_atom) or grad[row].
    """
    n_species = radial_coeffs.shape[0]
    n_mu = radial_coeffs.shape[2]
    rb_size = radial_coeffs.shape[3]
    n_radial = n_species * n_species * n_mu * rb_size
    n_ang = ang_abc.shape[0]
    mu_start = np.zeros(n_mu + 1, dtype=np.int64)
    for k in range(basic_mu.shape[0]):
        mu_start[basic_mu[k] + 1] += 1
    for mu in range(n_mu):
        mu_start[mu + 1] += mu_start[mu]
    # per monomial: degree, exponents and the index of the monomial one degree lower
    max_nu = 0
    nu = np.empty(n_ang)
    ex = np.empty((n_ang, 3))
    lower = np.zeros((n_ang, 3), dtype=np.int64)
    for g in range(n_ang):
        a, b, c = ang_abc[g, 0], ang_abc[g, 1], ang_abc[g, 2]
        max_nu = max(max_nu, a + b + c)
        nu[g] = a + b + c
        ex[g, 0], ex[g, 1], ex[g, 2] = a, b, c
        if a > 0:
            lower[g, 0] = _monomial_index(a - 1, b, c)
        if b > 0:
            lower[g, 1] = _monomial_index(a, b - 1, c)
        if c > 0:
            lower[g, 2] = _monomial_index(a, b, c - 1)
    max_pairs = 0
    for i in range(first, last):
        max_pairs = max(max_pairs, offsets[i + 1] - offsets[i])
    rb_ders = np.empty(rb_size)
    pw = np.empty((3, max_nu + 1))
    pair_q = np.empty((max_pairs, rb_size))
    pair_ang = np.empty((max_pairs, n_ang))
    pair_f = np.empty((max_pairs, n_mu))
    pair_fp = np.empty((max_pairs, n_mu))
    w_ang = np.empty(n_ang)
    s_mu = np.empty(n_mu)
    moments = np.empty(n_moments)
    dmom = np.empty(n_moments)
    for i in range(first, last):
        ti = types[i]
        p0 = offsets[i]
        out = i if per_atom else row
        moments[:] = 0.0
        # forward: M_{mu, g} = sum_p f_mu(r_p) u_p^{abc_g}   (eq. 3)
        for p in range(p0, offsets[i + 1]):
            m = p - p0
            x, y, z = vec[p, 0], vec[p, 1], vec[p, 2]
            r = np.sqrt(x * x + y * y + z * z)
            chebyshev_basis(r, min_dist, max_dist, scaling, pair_q[m], rb_ders)
            tj = types[nbr[p]]
            for mu in range(n_mu):
                fv = 0.0
                fd = 0.0
                for b in range(rb_size):
                    c = radial_coeffs[ti, tj, mu, b]
                    fv += c * pair_q[m, b]
                    fd += c * rb_ders[b]
                pair_f[m, mu] = fv
                pair_fp[m, mu] = fd
            inv_r = 1.0 / r
            _unit_powers(x * inv_r, y * inv_r, z * inv_r, max_nu, pw)
            for g in range(n_ang):
                pair_ang[m, g] = pw[0, ang_abc[g, 0]] * pw[1, ang_abc[g, 1]] * pw[2, ang_abc[g, 2]]
            for mu in range(n_mu):
                fm = pair_f[m, mu]
                base = mu_start[mu]
                for g in range(mu_start[mu + 1] - base):
                    moments[base + g] += fm * pair_ang[m, g]
        # products of moments (alpha_index_times), then the site energy (eq. 2)
        for t in range(times.shape[0]):
            moments[times[t, 3]] += times[t, 2] * moments[times[t, 0]] * moments[times[t, 1]]
        energy = species_coeffs[ti]
        for s in range(mapping.shape[0]):
            energy += moment_coeffs[s] * moments[mapping[s]]
        site_energy[i] = energy
        if want_params:
            for s in range(mapping.shape[0]):
                grad[out, n_radial + n_species + s] += moments[mapping[s]]   # dE_i/dc_alpha = B_alpha
            grad[out, n_radial + ti] += 1.0
        if not (want_forces or want_params):
            continue
        # backward: dE_i / d moments
        dmom[:] = 0.0
        for s in range(mapping.shape[0]):
            dmom[mapping[s]] += moment_coeffs[s]
        for t in range(times.shape[0] - 1, -1, -1):
            w = dmom[times[t, 3]] * times[t, 2]
            if w != 0.0:
                dmom[times[t, 0]] += w * moments[times[t, 1]]
                dmom[times[t, 1]] += w * moments[times[t, 0]]
        # backward through the basic moments, pair by pair:
        # d/d(vec) of f(r) u^abc = f'(r) A u + f(r)/r (grad_u A - nu A u)
        for p in range(p0, offsets[i + 1]):
            m = p - p0
            x, y, z = vec[p, 0], vec[p, 1], vec[p, 2]
            r = np.sqrt(x * x + y * y + z * z)
            inv_r = 1.0 / r
            w_ang[:] = 0.0
            w_rad = 0.0
            for mu in range(n_mu):
                fm = pair_f[m, mu]
                base = mu_start[mu]
                dot = 0.0
                for g in range(mu_start[mu + 1] - base):
                    d = dmom[base + g]
                    w_ang[g] += d * fm
                    dot += d * pair_ang[m, g]
                w_rad += pair_fp[m, mu] * dot
                s_mu[mu] = dot            # sum_{g} dE_i/dM_{mu,g} A_g(p)
            if want_params:
                # dE_i/d radial_coeffs[ti, tj, mu, b] += Q_b(r_p) s_mu(p)
                base = (ti * n_species + types[nbr[p]]) * n_mu * rb_size
                for mu in range(n_mu):
                    sm = s_mu[mu]
                    for b in range(rb_size):
                        grad[out, base + mu * rb_size + b] += sm * pair_q[m, b]
            if not want_forces:
                continue
            gx = 0.0
            gy = 0.0
            gz = 0.0
            radial_part = w_rad
            for g in range(n_ang):
                w = w_ang[g]
                radial_part -= w * nu[g] * pair_ang[m, g] * inv_r
                gx += w * ex[g, 0] * pair_ang[m, lower[g, 0]]
                gy += w * ex[g, 1] * pair_ang[m, lower[g, 1]]
                gz += w * ex[g, 2] * pair_ang[m, lower[g, 2]]
            pair_grad[p, 0] = (radial_part * x + gx) * inv_r
            pair_grad[p, 1] = (radial_part * y + gy) * inv_r
            pair_grad[p, 2] = (radial_part * z + gz) * inv_r


@njit(cache=True)
def _site_block(first, last, types, offsets, nbr, vec, radial_coeffs, scaling, min_dist,
                max_dist, basic_mu, basic_ang, ang_abc, times, mapping, species_coeffs,
                moment_coeffs, n_moments, site_energy, pair_grad):
    """Site energies of atoms first..last-1 and dE_i/d(vec_p) for their pairs."""
    _mtp_block(first, last, True, False, False, 0, types, offsets, nbr, vec, radial_coeffs,
               scaling, min_dist, max_dist, basic_mu, basic_ang, ang_abc, times, mapping,
               species_coeffs, moment_coeffs, n_moments, site_energy, pair_grad,
               np.empty((0, 0)))


@njit(cache=True, inline="always")
def scatter_pair_gradients(first, last, offsets, nbr, vec, pair_grad, forces, virial):
    """Add the pairs of atoms first..last-1 to F = -dE/dr and the virial sum_p vec_p (x) dE/dvec_p."""
    for i in range(first, last):
        for p in range(offsets[i], offsets[i + 1]):
            j = nbr[p]
            for a in range(3):
                g = pair_grad[p, a]
                forces[i, a] += g
                forces[j, a] -= g
                for b in range(3):
                    virial[a, b] += vec[p, b] * g


@njit(cache=True)
def forces_and_virial(n_atoms, offsets, nbr, vec, pair_grad):
    """Forces F = -dE/dr and the virial sum_p vec_p (x) dE/dvec_p (3x3), from pair gradients."""
    forces = np.zeros((n_atoms, 3))
    virial = np.zeros((3, 3))
    scatter_pair_gradients(0, n_atoms, offsets, nbr, vec, pair_grad, forces, virial)
    return forces, virial


@njit(cache=True)
def mtp_serial(types, offsets, nbr, vec, radial_coeffs, scaling, min_dist, max_dist, basic_mu,
               basic_ang, ang_abc, times, mapping, species_coeffs, moment_coeffs, n_moments,
               want_forces, want_params, per_atom):
    """Site energies, dE/d(vec_p) and dE/dtheta rows on one thread (small cells).

    Evaluation and grading both call this one compiled function (or `mtp_parallel`), so
    their energies and forces agree bit for bit. Rows: (n_atoms, n_params) per atom, else
    (1, n_params) summed over atoms; (0, 0) without `want_params`.
    """
    n_atoms = types.shape[0]
    n_params = radial_coeffs.size + radial_coeffs.shape[0] + mapping.shape[0]
    site_energy = np.empty(n_atoms)
    pair_grad = np.zeros((vec.shape[0] if want_forces else 0, 3))
    grad = np.zeros(((n_atoms if per_atom else 1) if want_params else 0,
                     n_params if want_params else 0))
    _mtp_block(0, n_atoms, want_forces, want_params, per_atom, 0, types, offsets, nbr, vec,
               radial_coeffs, scaling, min_dist, max_dist, basic_mu, basic_ang, ang_abc, times,
               mapping, species_coeffs, moment_coeffs, n_moments, site_energy, pair_grad, grad)
    return site_energy, pair_grad, grad


@njit(cache=True, parallel=True)
def mtp_parallel(types, offsets, nbr, vec, radial_coeffs, scaling, min_dist, max_dist, basic_mu,
                 basic_ang, ang_abc, times, mapping, species_coeffs, moment_coeffs, n_moments,
                 want_forces, want_params, per_atom, n_blocks):
    """As `mtp_serial`, parallel over blocks of atoms; rows summed per block when not per atom."""
    n_atoms = types.shape[0]
    n_params = radial_coeffs.size + radial_coeffs.shape[0] + mapping.shape[0]
    n_blocks = max(1, min(n_blocks, n_atoms))
    site_energy = np.empty(n_atoms)
    pair_grad = np.zeros((vec.shape[0] if want_forces else 0, 3))
    grad = np.zeros(((n_atoms if per_atom else n_blocks) if want_params else 0,
                     n_params if want_params else 0))
    for blk in prange(n_blocks):
        first = blk * n_atoms // n_blocks
        last = (blk + 1) * n_atoms // n_blocks
        _mtp_block(first, last, want_forces, want_params, per_atom, np.int64(blk), types, offsets,
                   nbr, vec, radial_coeffs, scaling, min_dist, max_dist, basic_mu, basic_ang,
                   ang_abc, times, mapping, species_coeffs, moment_coeffs, n_moments,
                   site_energy, pair_grad, grad)
    return site_energy, pair_grad, grad
