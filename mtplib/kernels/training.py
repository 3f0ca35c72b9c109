"""Numba kernels for training the MTP: arrays in, arrays out (Novikov et al. 2021, sec. 2.3).

Two kernels, both per configuration; their batch forms (`batch_design`,
`batch_radial_gradient`) run configurations side by side on threads (`mtplib.threads`), each
configuration on its own, so results do not depend on the thread count:

- `linear_design`: for fixed radial coefficients, energy, forces and virial are linear in
  theta_lin = [species_coeffs, moment_coeffs]. It returns the rows
  X = [energy (1), forces (3N, atom-major), virial (9, row-major)] x n_lin,
  by the chain rule through the basic moments: per basis function B_s a reverse sweep over
  the products of `alpha_index_times` it depends on gives dB_s/dM_k, which multiplies the
  Jacobian of the basic moments M_k w.r.t. the neighbour vectors (`basis_dependencies`).
- `radial_gradient`: d/dc_radial of  alpha * E + sum_p t_p . dE/dvec_p  at fixed linear
  coefficients, by one forward-over-reverse pass (tangents of the basic moments, of the
  products and of the backward dE/dmoments). With alpha = dL/dE and the pair tangents
  t_p = dL/dF_i - dL/dF_j + (dL/dW)^T vec_p this is the loss gradient w.r.t. the radial
  coefficients without forming dF/dc.

Neighbour pairs are in the CSR form of `kernels.mtp` (vec = r_j - r_i).
"""
import numpy as np
from ..jit import njit

from ..threads import run_chunks
from .mtp import _unit_powers, kernel_tables, mtp_batch, product_runs, radial_basis


@njit(cache=True, inline="always")
def _max_nu(ang_abc):
    m = 0
    for g in range(ang_abc.shape[0]):
        m = max(m, ang_abc[g, 0] + ang_abc[g, 1] + ang_abc[g, 2])
    return m


BASIS_BLOCK = 32    # design rows of 32 basis functions at a time


@njit(cache=True)
def basis_dependencies(times, mapping, n_basic, n_moments):
    """The dependency structure of each basis function B_s = moment mapping[s] on the basic
    moments, for the chain rule dB_s/dvec = sum_k (dB_s/dM_k) dM_k/dvec (basic k only).

    Returns run_start, run_target, factor_a, factor_b (`product_runs`); per s, the runs of
    alpha_index_times that B_s depends on, in descending order (for its reverse sweep):
    s_runs[s_run_ptr[s]:s_run_ptr[s+1]]; and the basic moments it depends on:
    s_basic[s_basic_ptr[s]:s_basic_ptr[s+1]]. At level 24 each B_s depends on 29 basic
    moments on average (24759 in all) where the forward pass has 49764 products."""
    run_start, run_target, factor_a, factor_b, _ = product_runs(times)
    n_runs = run_target.shape[0]
    n_basis = mapping.shape[0]
    mark = np.zeros(n_moments, dtype=np.bool_)
    s_run_ptr = np.zeros(n_basis + 1, dtype=np.int64)
    s_basic_ptr = np.zeros(n_basis + 1, dtype=np.int64)
    for sweep in range(2):                  # count, then fill
        if sweep == 1:
            s_runs = np.empty(s_run_ptr[n_basis], dtype=np.int64)
            s_basic = np.empty(s_basic_ptr[n_basis], dtype=np.int64)
        for s in range(n_basis):
            mark[:] = False
            mark[mapping[s]] = True
            n_r = 0
            for r in range(n_runs - 1, -1, -1):
                if mark[run_target[r]]:
                    for t in range(run_start[r], run_start[r + 1]):
                        mark[factor_a[t]] = True
                        mark[factor_b[t]] = True
                    if sweep == 1:
                        s_runs[s_run_ptr[s] + n_r] = r
                    n_r += 1
            n_b = 0
            for k in range(n_basic):
                if mark[k]:
                    if sweep == 1:
                        s_basic[s_basic_ptr[s] + n_b] = k
                    n_b += 1
            if sweep == 0:
                s_run_ptr[s + 1] = s_run_ptr[s] + n_r
                s_basic_ptr[s + 1] = s_basic_ptr[s] + n_b
    return (run_start, run_target, factor_a, factor_b, s_run_ptr, s_runs, s_basic_ptr, s_basic)


@njit(cache=True)
def _design_block(first, last, types, offsets, nbr, vec, radial_coeffs, scaling, min_dist,
                  max_dist, repulsive, basic_mu, basic_ang, ang_abc, times, mapping, n_moments,
                  deps, with_forces, site_rows, X, row0):
    """site_rows[i - first, s] = B_s(i) for the atoms first..last-1 of one configuration; with
    forces, g = dB_s(i)/d(vec_p) of each pair p = (i, j) goes straight into the design rows
    X[row0:] of the configuration: F_i += g, F_j -= g, W += vec_p (x) g (see `_config_rows`).

    Per atom: the moments forward (eq. 3 and alpha_index_times); the Jacobian of the basic
    moments w.r.t. the neighbour vectors, jb (n_basic x 3 n_neighbours); per basis function
    a reverse sweep over its own products gives G_sk = dB_s/dM_k (basic k), and its row of
    the design is sum_k G_sk jb[k]. (A forward-mode Jacobian through all of
    alpha_index_times costs 2 x 49764 multiply-adds per column at level 24 and streams a
    4 MB block from L3; this costs 24759, reading jb (390 KB) from L2, plus the sweeps
    (75061 products in all, per atom, latency-bound). bench_mlearn.py --profile times it:
    benchmarks/RESULTS.md.)"""
    run_start, run_target, factor_a, factor_b, s_run_ptr, s_runs, s_basic_ptr, s_basic = deps
    n_mu = radial_coeffs.shape[2]
    rb_size = radial_coeffs.shape[3]
    n_basic = basic_mu.shape[0]
    n_ang = ang_abc.shape[0]
    n_times = times.shape[0]
    n_basis = mapping.shape[0]
    n_species = radial_coeffs.shape[0]
    vrow = row0 + 1 + 3 * (last - first)
    max_nu = _max_nu(ang_abc)
    max_nbr = 0
    for i in range(first, last):
        max_nbr = max(max_nbr, offsets[i + 1] - offsets[i])
    rb_vals = np.empty(rb_size)
    rb_ders = np.empty(rb_size)
    pw = np.empty((3, max_nu + 1))
    ang = np.empty(n_ang)
    dang = np.empty((n_ang, 3))
    f = np.empty(n_mu)
    fp = np.empty(n_mu)
    moments = np.empty(n_moments)
    coef_a = np.empty(n_times)            # d product / d factor_a = mult * factor_b
    coef_b = np.empty(n_times)
    adjoint = np.zeros(n_moments)         # dB_s / d moment, one s at a time
    width = 3 * max_nbr if with_forces else 0
    jb = np.empty((n_basic, width))       # d M_k / d(vec_q)_a at column 3q + a, basic k
    rows = np.empty((BASIS_BLOCK, width))
    for i in range(first, last):
        ti = types[i]
        start = offsets[i]
        n_p = offsets[i + 1] - start
        w3 = 3 * n_p
        moments[:] = 0.0
        for q in range(n_p):
            p = start + q
            x, y, z = vec[p, 0], vec[p, 1], vec[p, 2]
            r = np.sqrt(x * x + y * y + z * z)
            radial_basis(r, min_dist, max_dist, scaling, repulsive, rb_vals, rb_ders)
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
            inv_r = 1.0 / r
            ux, uy, uz = x * inv_r, y * inv_r, z * inv_r
            _unit_powers(ux, uy, uz, max_nu, pw)
            for g in range(n_ang):
                a, b, c = ang_abc[g, 0], ang_abc[g, 1], ang_abc[g, 2]
                val = pw[0, a] * pw[1, b] * pw[2, c]
                ang[g] = val
                if with_forces:
                    # d u^abc / d vec = (grad_u A - nu A u) / r
                    nu_a = (a + b + c) * val
                    gx = a * pw[0, a - 1] * pw[1, b] * pw[2, c] if a > 0 else 0.0
                    gy = b * pw[0, a] * pw[1, b - 1] * pw[2, c] if b > 0 else 0.0
                    gz = c * pw[0, a] * pw[1, b] * pw[2, c - 1] if c > 0 else 0.0
                    dang[g, 0] = (gx - nu_a * ux) * inv_r
                    dang[g, 1] = (gy - nu_a * uy) * inv_r
                    dang[g, 2] = (gz - nu_a * uz) * inv_r
            for k in range(n_basic):
                mu = basic_mu[k]
                g = basic_ang[k]
                moments[k] += f[mu] * ang[g]
                if with_forces:
                    jb[k, 3 * q] = fp[mu] * ang[g] * ux + f[mu] * dang[g, 0]
                    jb[k, 3 * q + 1] = fp[mu] * ang[g] * uy + f[mu] * dang[g, 1]
                    jb[k, 3 * q + 2] = fp[mu] * ang[g] * uz + f[mu] * dang[g, 2]
        for t in range(n_times):
            k1, k2, mult, out = times[t, 0], times[t, 1], times[t, 2], times[t, 3]
            m1 = moments[k1]
            m2 = moments[k2]
            moments[out] += mult * m1 * m2
            coef_a[t] = mult * m2
            coef_b[t] = mult * m1
        for s in range(n_basis):
            site_rows[i - first, s] = moments[mapping[s]]
        if not with_forces:
            continue
        for s0 in range(0, n_basis, BASIS_BLOCK):
            s1 = min(s0 + BASIS_BLOCK, n_basis)
            for s in range(s0, s1):
                # reverse sweep over the products B_s depends on: adjoint[k] = dB_s/dM_k
                adjoint[mapping[s]] = 1.0
                for j in range(s_run_ptr[s], s_run_ptr[s + 1]):
                    r = s_runs[j]
                    out = run_target[r]
                    w = adjoint[out]
                    adjoint[out] = 0.0
                    if w != 0.0:
                        for t in range(run_start[r], run_start[r + 1]):
                            adjoint[factor_a[t]] += w * coef_a[t]
                            adjoint[factor_b[t]] += w * coef_b[t]
                rows[s - s0, :w3] = 0.0
                for j in range(s_basic_ptr[s], s_basic_ptr[s + 1]):
                    k = s_basic[j]
                    g = adjoint[k]
                    adjoint[k] = 0.0
                    if g != 0.0:
                        for e in range(w3):
                            rows[s - s0, e] += g * jb[k, e]
            # scatter the block into the force and virial rows (in the order of the pairs,
            # so every element of X sums its terms in the same order as a serial pass)
            ri = row0 + 1 + 3 * (i - first)
            for q in range(n_p):
                p = start + q
                rj = row0 + 1 + 3 * (nbr[p] - first)
                for a in range(3):
                    col = 3 * q + a
                    for s in range(s0, s1):
                        g = rows[s - s0, col]
                        X[ri + a, n_species + s] += g
                        X[rj + a, n_species + s] -= g
                    for b in range(3):
                        v = vec[p, b]
                        for s in range(s0, s1):
                            X[vrow + 3 * b + a, n_species + s] += v * rows[s - s0, col]


@njit(cache=True, inline="always")
def _config_rows(a0, a1, types, offsets, nbr, vec, radial_coeffs, scaling, min_dist, max_dist,
                 repulsive, basic_mu, basic_ang, ang_abc, times, mapping, n_moments, deps,
                 with_forces, X, row0):
    """Design rows of the configuration of atoms a0..a1-1 into X[row0:]: energy, forces
    F = -dE/dr (atom-major), virial W = sum_p vec_p (x) dE/dvec_p (3x3 row-major)."""
    n_atoms = a1 - a0
    n_species = radial_coeffs.shape[0]
    n_basis = mapping.shape[0]
    site_rows = np.zeros((n_atoms, n_basis))
    _design_block(a0, a1, types, offsets, nbr, vec, radial_coeffs, scaling, min_dist, max_dist,
                  repulsive, basic_mu, basic_ang, ang_abc, times, mapping, n_moments, deps,
                  with_forces, site_rows, X, row0)
    for i in range(n_atoms):                       # energy row, eq. 2
        X[row0, types[a0 + i]] += 1.0
        for s in range(n_basis):
            X[row0, n_species + s] += site_rows[i, s]


def design_rows_count(n_atoms, with_forces):
    return 1 + 3 * n_atoms + 9 if with_forces else 1


@njit(cache=True)
def linear_design(types, offsets, nbr, vec, radial_coeffs, scaling, min_dist, max_dist, repulsive,
                  basic_mu, basic_ang, ang_abc, times, mapping, n_moments, with_forces):
    """Rows of E, F, W in theta_lin = [species_coeffs, moment_coeffs] for one configuration.

    Returns X of shape (1 + 3N + 9, S + n_basis) if `with_forces`, else (1, S + n_basis):
    row 0 the energy, rows 1..3N the forces F = -dE/dr (atom-major), the last 9 the virial
    W = sum_p vec_p (x) dE/dvec_p (3x3 row-major; stress = W / V with ASE's sign).
    """
    n_atoms = types.shape[0]
    n_rows = 1 + 3 * n_atoms + 9 if with_forces else 1
    X = np.zeros((n_rows, radial_coeffs.shape[0] + mapping.shape[0]))
    deps = basis_dependencies(times, mapping, basic_mu.shape[0], n_moments)
    _config_rows(0, n_atoms, types, offsets, nbr, vec, radial_coeffs, scaling, min_dist,
                 max_dist, repulsive, basic_mu, basic_ang, ang_abc, times, mapping, n_moments, deps,
                 with_forces, X, 0)
    return X


@njit(cache=True, nogil=True)
def _design_range(lo, hi, cfg_atoms, row_start, types, offsets, nbr, vec, radial_coeffs, scaling,
                  min_dist, max_dist, repulsive, basic_mu, basic_ang, ang_abc, times, mapping,
                  n_moments, deps, with_forces, X):
    """`_config_rows` of configurations lo..hi-1 (`batch_design`)."""
    for c in range(lo, hi):
        _config_rows(cfg_atoms[c], cfg_atoms[c + 1], types, offsets, nbr, vec, radial_coeffs,
                     scaling, min_dist, max_dist, repulsive, basic_mu, basic_ang, ang_abc, times,
                     mapping, n_moments, deps, with_forces, X, row_start[c])


def batch_design(cfg_atoms, row_start, types, offsets, nbr, vec, radial_coeffs, scaling,
                 min_dist, max_dist, repulsive, basic_mu, basic_ang, ang_abc, times, mapping,
                 n_moments, with_forces):
    """`linear_design` of configurations c (atoms cfg_atoms[c]..cfg_atoms[c+1]-1 of a batch
    in one CSR list) stacked at rows row_start[c]; on threads over configurations
    (`mtplib.threads`)."""
    X = np.zeros((row_start[-1], radial_coeffs.shape[0] + mapping.shape[0]))
    deps = basis_dependencies(times, mapping, basic_mu.shape[0], n_moments)
    run_chunks(_design_range, cfg_atoms.shape[0] - 1, cfg_atoms, row_start, types, offsets, nbr,
               vec, radial_coeffs, scaling, min_dist, max_dist, repulsive, basic_mu, basic_ang,
               ang_abc, times, mapping, n_moments, deps, with_forces, X)
    return X


def batch_evaluate(cfg_atoms, types, offsets, nbr, vec, radial_coeffs, scaling, min_dist,
                   max_dist, repulsive, basic_mu, basic_ang, ang_abc, times, mapping,
                   species_coeffs, moment_coeffs, n_moments):
    """Energies (n_cfg,), forces (n_atoms, 3) and virials (n_cfg, 3, 3) of a batch: the
    evaluation kernel `mtp_batch`, one structure per configuration."""
    tables = kernel_tables(ang_abc, basic_mu, radial_coeffs.shape[2], times)
    site, forces, virial = mtp_batch(types, offsets, nbr, vec, radial_coeffs, scaling, min_dist,
                                     max_dist, repulsive, basic_mu, basic_ang, ang_abc, times,
                                     mapping, species_coeffs, moment_coeffs, n_moments, tables,
                                     cfg_atoms)
    n_cfg = cfg_atoms.shape[0] - 1
    energy = np.zeros(n_cfg)
    np.add.at(energy, np.repeat(np.arange(n_cfg), np.diff(cfg_atoms)), site)    # atom order
    return energy, forces, virial


@njit(cache=True)
def _radial_grad_block(first, last, types, offsets, nbr, vec, radial_coeffs, scaling,
                       min_dist, max_dist, repulsive, basic_mu, basic_ang, ang_abc, times, mapping,
                       moment_coeffs, n_moments, alpha, tangent, grad):
    """grad[ti,tj,mu,b] += alpha dE_i/dc + d/deps dE_i/dc(vec + eps t), atoms first..last-1."""
    n_mu = radial_coeffs.shape[2]
    rb_size = radial_coeffs.shape[3]
    n_basic = basic_mu.shape[0]
    n_ang = ang_abc.shape[0]
    max_nu = _max_nu(ang_abc)
    max_nbr = 0
    for i in range(first, last):
        max_nbr = max(max_nbr, offsets[i + 1] - offsets[i])
    # per-pair values of the forward pass, reused by the backward pass
    pair_q = np.empty((max_nbr, rb_size))      # Q_b(r_p)
    pair_qd = np.empty((max_nbr, rb_size))     # Q_b'(r_p)
    pair_ang = np.empty((max_nbr, n_ang))      # u_p^abc
    pair_dang = np.empty((max_nbr, n_ang))     # its tangent along t_p
    pair_dr = np.empty(max_nbr)                # tangent of r_p along t_p
    pw = np.empty((3, max_nu + 1))
    f = np.empty(n_mu)
    df = np.empty(n_mu)                 # tangent of f_mu
    s_mu = np.empty(n_mu)
    ds_mu = np.empty(n_mu)
    # per moment k: its value, its tangent, dE/dM_k and the tangent of that, side by side
    # (one cache line holds all that a product reads and writes of one factor)
    st = np.empty((n_moments, 4))
    for i in range(first, last):
        ti = types[i]
        p0 = offsets[i]
        st[:, 0] = 0.0
        st[:, 1] = 0.0
        for p in range(p0, offsets[i + 1]):
            m = p - p0
            x, y, z = vec[p, 0], vec[p, 1], vec[p, 2]
            r = np.sqrt(x * x + y * y + z * z)
            radial_basis(r, min_dist, max_dist, scaling, repulsive, pair_q[m], pair_qd[m])
            tj = types[nbr[p]]
            inv_r = 1.0 / r
            ux, uy, uz = x * inv_r, y * inv_r, z * inv_r
            tx, ty, tz = tangent[p, 0], tangent[p, 1], tangent[p, 2]
            dr = ux * tx + uy * ty + uz * tz
            pair_dr[m] = dr
            dux = (tx - ux * dr) * inv_r
            duy = (ty - uy * dr) * inv_r
            duz = (tz - uz * dr) * inv_r
            for mu in range(n_mu):
                acc = 0.0
                accd = 0.0
                for b in range(rb_size):
                    c = radial_coeffs[ti, tj, mu, b]
                    acc += c * pair_q[m, b]
                    accd += c * pair_qd[m, b]
                f[mu] = acc
                df[mu] = accd * dr
            _unit_powers(ux, uy, uz, max_nu, pw)
            for g in range(n_ang):
                a, b, c = ang_abc[g, 0], ang_abc[g, 1], ang_abc[g, 2]
                pair_ang[m, g] = pw[0, a] * pw[1, b] * pw[2, c]
                d = 0.0
                if a > 0:
                    d += a * pw[0, a - 1] * pw[1, b] * pw[2, c] * dux
                if b > 0:
                    d += b * pw[0, a] * pw[1, b - 1] * pw[2, c] * duy
                if c > 0:
                    d += c * pw[0, a] * pw[1, b] * pw[2, c - 1] * duz
                pair_dang[m, g] = d
            for k in range(n_basic):
                mu = basic_mu[k]
                g = basic_ang[k]
                st[k, 0] += f[mu] * pair_ang[m, g]
                st[k, 1] += df[mu] * pair_ang[m, g] + f[mu] * pair_dang[m, g]
        for t in range(times.shape[0]):
            k1, k2, mult, out = times[t, 0], times[t, 1], times[t, 2], times[t, 3]
            m1 = st[k1, 0]
            m2 = st[k2, 0]
            st[out, 0] += mult * m1 * m2
            st[out, 1] += mult * (st[k1, 1] * m2 + m1 * st[k2, 1])
        st[:, 2] = 0.0
        st[:, 3] = 0.0
        for s in range(mapping.shape[0]):
            st[mapping[s], 2] += moment_coeffs[s]
        for t in range(times.shape[0] - 1, -1, -1):
            k1, k2, mult, out = times[t, 0], times[t, 1], times[t, 2], times[t, 3]
            w = st[out, 2] * mult
            wt = st[out, 3] * mult
            if w != 0.0 or wt != 0.0:
                m1, dm1 = st[k1, 0], st[k1, 1]
                m2, dm2 = st[k2, 0], st[k2, 1]
                st[k1, 2] += w * m2
                st[k2, 2] += w * m1
                st[k1, 3] += wt * m2 + w * dm2
                st[k2, 3] += wt * m1 + w * dm1
        # dE_i/dc[ti,tj,mu,b] = sum_p Q_b(r_p) s_mu,p and its tangent
        for p in range(p0, offsets[i + 1]):
            m = p - p0
            tj = types[nbr[p]]
            s_mu[:] = 0.0
            ds_mu[:] = 0.0
            for k in range(n_basic):
                mu = basic_mu[k]
                g = basic_ang[k]
                s_mu[mu] += st[k, 2] * pair_ang[m, g]
                ds_mu[mu] += st[k, 3] * pair_ang[m, g] + st[k, 2] * pair_dang[m, g]
            dr = pair_dr[m]
            for mu in range(n_mu):
                a_s = alpha * s_mu[mu] + ds_mu[mu]
                b_s = s_mu[mu] * dr
                for b in range(rb_size):
                    grad[ti, tj, mu, b] += a_s * pair_q[m, b] + b_s * pair_qd[m, b]


@njit(cache=True)
def radial_gradient(types, offsets, nbr, vec, radial_coeffs, scaling, min_dist, max_dist, repulsive,
                    basic_mu, basic_ang, ang_abc, times, mapping, moment_coeffs, n_moments,
                    alpha, tangent):
    """d/dc_radial [alpha E + sum_p t_p . dE/dvec_p] (shape of radial_coeffs) of one
    configuration, at fixed species and moment coefficients."""
    grad = np.zeros(radial_coeffs.shape)
    _radial_grad_block(0, types.shape[0], types, offsets, nbr, vec, radial_coeffs, scaling,
                       min_dist, max_dist, repulsive, basic_mu, basic_ang, ang_abc, times, mapping,
                       moment_coeffs, n_moments, alpha, tangent, grad)
    return grad


@njit(cache=True, nogil=True)
def _radial_grad_range(lo, hi, cfg_atoms, types, offsets, nbr, vec, radial_coeffs, scaling,
                       min_dist, max_dist, repulsive, basic_mu, basic_ang, ang_abc, times, mapping,
                       moment_coeffs, n_moments, alpha, tangent, partial):
    """`_radial_grad_block` of configurations lo..hi-1 into partial[c] (`batch_radial_gradient`)."""
    for c in range(lo, hi):
        _radial_grad_block(cfg_atoms[c], cfg_atoms[c + 1], types, offsets, nbr, vec,
                           radial_coeffs, scaling, min_dist, max_dist, repulsive, basic_mu,
                           basic_ang, ang_abc, times, mapping, moment_coeffs, n_moments,
                           alpha[c], tangent, partial[c])


def batch_radial_gradient(cfg_atoms, types, offsets, nbr, vec, radial_coeffs, scaling,
                          min_dist, max_dist, repulsive, basic_mu, basic_ang, ang_abc, times,
                          mapping, moment_coeffs, n_moments, alpha, tangent):
    """Sum over the configurations of a batch of `radial_gradient` (alpha per configuration,
    tangents per pair); per-configuration results added in order (reproducible)."""
    n_cfg = cfg_atoms.shape[0] - 1
    partial = np.zeros((n_cfg,) + radial_coeffs.shape)
    run_chunks(_radial_grad_range, n_cfg, cfg_atoms, types, offsets, nbr, vec, radial_coeffs,
               scaling, min_dist, max_dist, repulsive, basic_mu, basic_ang, ang_abc, times,
               mapping, moment_coeffs, n_moments, alpha, tangent, partial)
    grad = np.zeros(radial_coeffs.shape)
    for c in range(n_cfg):
        grad += partial[c]
    return grad


@njit(cache=True)
def pair_tangents(offsets, nbr, vec, force_coef, virial_coef):
    """t_p = force_coef[i] - force_coef[j] + virial_coef^T vec_p, so that
    sum_p t_p . g_p = sum_a force_coef[a] . F_a + sum virial_coef : W (F_i += g_p, F_j -= g_p)."""
    n_atoms = offsets.shape[0] - 1
    t = np.empty((vec.shape[0], 3))
    for i in range(n_atoms):
        for p in range(offsets[i], offsets[i + 1]):
            j = nbr[p]
            for b in range(3):
                acc = force_coef[i, b] - force_coef[j, b]
                for a in range(3):
                    acc += virial_coef[a, b] * vec[p, a]
                t[p, b] = acc
    return t


@njit(cache=True)
def batch_pair_tangents(cfg_atoms, offsets, nbr, vec, force_coef, virial_coef):
    """`pair_tangents` over a batch: force_coef per atom, virial_coef (n_cfg, 3, 3)."""
    t = np.empty((vec.shape[0], 3))
    for c in range(cfg_atoms.shape[0] - 1):
        for i in range(cfg_atoms[c], cfg_atoms[c + 1]):
            for p in range(offsets[i], offsets[i + 1]):
                j = nbr[p]
                for b in range(3):
                    acc = force_coef[i, b] - force_coef[j, b]
                    for a in range(3):
                        acc += virial_coef[c, a, b] * vec[p, a]
                    t[p, b] = acc
    return t
