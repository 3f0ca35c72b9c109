"""A fused numba kernel for grading: energies, pair gradients AND dE/dtheta in one pass.

`site_energies_pair_and_parameter_gradients` does the forward and backward passes of
`mtplib.kernels.mtp._site_block` with the same arithmetic in the same order (so the energy
and forces are bit-for-bit those of `MTPotential.evaluate`), and on the way accumulates the
parameter gradient of `_site_param_block`: dE_i/d moment_coeffs = B_alpha (known after the
forward pass), dE_i/d species_coeffs = 1, dE_i/d radial_coeffs = sum_p Q_b(r_p) s_mu(p) with
s_mu(p) = sum_{k: mu_k = mu} dE_i/dM_k ang_k(p), accumulated in the loop that already walks
the basic moments for the forces. Rows are either per atom (neighbourhood mode) or summed per
block of atoms (configuration mode: the caller sums the blocks), which avoids an
(n_atoms, n_params) array when only the configuration's row is needed.
"""
import numpy as np
from numba import njit, prange

from ..kernels.mtp import _unit_powers, chebyshev_basis


@njit(cache=True)
def _grade_block(first, last, row, per_atom, types, offsets, nbr, vec, radial_coeffs, scaling,
                 min_dist, max_dist, basic_mu, basic_ang, ang_abc, times, mapping,
                 species_coeffs, moment_coeffs, n_moments, site_energy, pair_grad, grad):
    n_species = radial_coeffs.shape[0]
    n_mu = radial_coeffs.shape[2]
    rb_size = radial_coeffs.shape[3]
    n_radial = n_species * n_species * n_mu * rb_size
    n_basic = basic_mu.shape[0]
    n_ang = ang_abc.shape[0]
    max_nu = 0
    for g in range(n_ang):
        max_nu = max(max_nu, ang_abc[g, 0] + ang_abc[g, 1] + ang_abc[g, 2])
    rb_vals = np.empty(rb_size)
    rb_ders = np.empty(rb_size)
    pw = np.empty((3, max_nu + 1))
    ang = np.empty(n_ang)
    f = np.empty(n_mu)
    fp = np.empty(n_mu)
    s_mu = np.empty(n_mu)
    w_ang = np.empty(n_ang)
    moments = np.empty(n_moments)
    dmom = np.empty(n_moments)
    for i in range(first, last):
        r_out = i if per_atom else row
        ti = types[i]
        moments[:] = 0.0
        for p in range(offsets[i], offsets[i + 1]):
            x, y, z = vec[p, 0], vec[p, 1], vec[p, 2]
            r = np.sqrt(x * x + y * y + z * z)
            chebyshev_basis(r, min_dist, max_dist, scaling, rb_vals, rb_ders)
            tj = types[nbr[p]]
            for mu in range(n_mu):
                acc = 0.0
                for b in range(rb_size):
                    acc += radial_coeffs[ti, tj, mu, b] * rb_vals[b]
                f[mu] = acc
            inv_r = 1.0 / r
            _unit_powers(x * inv_r, y * inv_r, z * inv_r, max_nu, pw)
            for g in range(n_ang):
                ang[g] = pw[0, ang_abc[g, 0]] * pw[1, ang_abc[g, 1]] * pw[2, ang_abc[g, 2]]
            for k in range(n_basic):
                moments[k] += f[basic_mu[k]] * ang[basic_ang[k]]
        for t in range(times.shape[0]):
            moments[times[t, 3]] += times[t, 2] * moments[times[t, 0]] * moments[times[t, 1]]
        energy = species_coeffs[ti]
        for s in range(mapping.shape[0]):
            energy += moment_coeffs[s] * moments[mapping[s]]
            grad[r_out, n_radial + n_species + s] += moments[mapping[s]]   # dE_i/dc_alpha = B_alpha
        grad[r_out, n_radial + ti] += 1.0
        site_energy[i] = energy
        dmom[:] = 0.0
        for s in range(mapping.shape[0]):
            dmom[mapping[s]] += moment_coeffs[s]
        for t in range(times.shape[0] - 1, -1, -1):
            w = dmom[times[t, 3]] * times[t, 2]
            if w != 0.0:
                dmom[times[t, 0]] += w * moments[times[t, 1]]
                dmom[times[t, 1]] += w * moments[times[t, 0]]
        for p in range(offsets[i], offsets[i + 1]):
            x, y, z = vec[p, 0], vec[p, 1], vec[p, 2]
            r = np.sqrt(x * x + y * y + z * z)
            chebyshev_basis(r, min_dist, max_dist, scaling, rb_vals, rb_ders)
            tj = types[nbr[p]]
            for mu in range(n_mu):
                acc = 0.0
                accd = 0.0
                for b in range(rb_size):
                    c = radial_coeffs[ti, tj, mu, b]
                    acc += c * rb_vals[b]
                    accd += c * rb_ders[b]
                f[mu] = acc
                fp[mu] = accd
                s_mu[mu] = 0.0
            inv_r = 1.0 / r
            ux, uy, uz = x * inv_r, y * inv_r, z * inv_r
            _unit_powers(ux, uy, uz, max_nu, pw)
            for g in range(n_ang):
                ang[g] = pw[0, ang_abc[g, 0]] * pw[1, ang_abc[g, 1]] * pw[2, ang_abc[g, 2]]
                w_ang[g] = 0.0
            w_rad = 0.0
            for k in range(n_basic):
                d = dmom[k]
                a_k = ang[basic_ang[k]]
                w_ang[basic_ang[k]] += d * f[basic_mu[k]]
                w_rad += d * fp[basic_mu[k]] * a_k
                s_mu[basic_mu[k]] += d * a_k
            base = (ti * n_species + tj) * n_mu * rb_size
            for mu in range(n_mu):
                sm = s_mu[mu]
                for b in range(rb_size):
                    grad[r_out, base + mu * rb_size + b] += sm * rb_vals[b]
            gx = 0.0
            gy = 0.0
            gz = 0.0
            radial_part = w_rad
            for g in range(n_ang):
                w = w_ang[g]
                if w == 0.0:
                    continue
                a, b, c = ang_abc[g, 0], ang_abc[g, 1], ang_abc[g, 2]
                radial_part -= w * (a + b + c) * ang[g] * inv_r
                if a > 0:
                    gx += w * a * pw[0, a - 1] * pw[1, b] * pw[2, c]
                if b > 0:
                    gy += w * b * pw[0, a] * pw[1, b - 1] * pw[2, c]
                if c > 0:
                    gz += w * c * pw[0, a] * pw[1, b] * pw[2, c - 1]
            pair_grad[p, 0] = radial_part * ux + gx * inv_r
            pair_grad[p, 1] = radial_part * uy + gy * inv_r
            pair_grad[p, 2] = radial_part * uz + gz * inv_r


@njit(cache=True, parallel=True)
def site_energies_pair_and_parameter_gradients(types, offsets, nbr, vec, radial_coeffs, scaling,
                                               min_dist, max_dist, basic_mu, basic_ang, ang_abc,
                                               times, mapping, species_coeffs, moment_coeffs,
                                               n_moments, n_blocks, per_atom):
    """Site energies (n,), dE/d(vec_p) (n_pairs, 3) and parameter-gradient rows.

    The rows are dE_i/dtheta (n, n_params) when `per_atom`, else partial sums of
    dE_i/dtheta over `n_blocks` blocks of atoms (n_blocks, n_params): sum them for the
    configuration's dE/dtheta.
    """
    n_atoms = types.shape[0]
    n_species = radial_coeffs.shape[0]
    n_params = radial_coeffs.size + n_species + mapping.shape[0]
    n_blocks = max(1, min(n_blocks, n_atoms))
    site_energy = np.empty(n_atoms)
    pair_grad = np.zeros((vec.shape[0], 3))
    grad = np.zeros((n_atoms if per_atom else n_blocks, n_params))
    for blk in prange(n_blocks):
        first = blk * n_atoms // n_blocks
        last = (blk + 1) * n_atoms // n_blocks
        _grade_block(first, last, np.int64(blk), per_atom, types, offsets, nbr, vec, radial_coeffs,
                     scaling, min_dist, max_dist, basic_mu, basic_ang, ang_abc, times, mapping,
                     species_coeffs, moment_coeffs, n_moments, site_energy, pair_grad, grad)
    return site_energy, pair_grad, grad
