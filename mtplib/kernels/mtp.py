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


# Reductions over the neighbours of one atom may be reordered (vectorised); nothing else is
# relaxed: no assumptions about NaN or infinity, so bad input still shows as NaN.
VECTOR_MATH = {"reassoc", "contract"}


@njit(cache=True)
def basis_tables(ang_abc, basic_mu, n_mu):
    """Per angular monomial g: the lower monomial and axis of the recursion
    u^g = u^parent * u_axis, its degree nu_g, and per axis the exponent and lower monomial
    (d u^g / d u_axis = exp * u^lower); per radial function mu the block start of its basic moments."""
    n_ang = ang_abc.shape[0]
    parent = np.zeros(n_ang, dtype=np.int64)
    axis = np.zeros(n_ang, dtype=np.int64)
    nu = np.zeros(n_ang)
    expo = np.zeros((3, n_ang))
    lower = np.zeros((3, n_ang), dtype=np.int64)
    for g in range(n_ang):
        a, b, c = ang_abc[g, 0], ang_abc[g, 1], ang_abc[g, 2]
        nu[g] = a + b + c
        abc = (a, b, c)
        for ax in range(3):
            if abc[ax] > 0:
                expo[ax, g] = abc[ax]
                lower[ax, g] = _monomial_index(a - (ax == 0), b - (ax == 1), c - (ax == 2))
        if a > 0:
            parent[g], axis[g] = lower[0, g], 0
        elif b > 0:
            parent[g], axis[g] = lower[1, g], 1
        elif c > 0:
            parent[g], axis[g] = lower[2, g], 2
    mu_start = np.zeros(n_mu + 1, dtype=np.int64)
    for k in range(basic_mu.shape[0]):
        mu_start[basic_mu[k] + 1] += 1
    for mu in range(n_mu):
        mu_start[mu + 1] += mu_start[mu]
    return parent, axis, nu, expo, lower, mu_start


@njit(cache=True, fastmath=VECTOR_MATH)
def _mtp_block(first, last, want_forces, want_params, per_atom, row, types, offsets, nbr, vec,
               radial_coeffs, scaling, min_dist, max_dist, basic_mu, basic_ang, ang_abc, times,
               mapping, species_coeffs, moment_coeffs, n_moments, site_energy, pair_grad, grad):
    """The MTP of atoms first..last-1: site energies, and optionally dE_i/d(vec_p) and dE_i/dtheta.

    Takes the basis in `MTPotential.kernel_arrays`' canonical layout: the basic moments of
    radial function mu are the block mu_start[mu] + g, g < count[mu], over the monomials
    ang_abc[g] in canonical order. Per atom, everything per neighbour is held with the
    neighbour index p innermost (f_mu[p], u^g[p], ...), so every loop over neighbours is a
    contiguous vector loop: the monomials by the recursion u^g = u^parent u_axis, the
    moments as dot products, and the backward pass as axpys. Evaluation, parameter gradients
    and grading all run this code, so their energies and forces agree bit for bit.
    dE_i/dtheta goes to grad[i] (per_atom) or grad[row].
    """
    n_species = radial_coeffs.shape[0]
    n_mu = radial_coeffs.shape[2]
    rb_size = radial_coeffs.shape[3]
    n_radial = n_species * n_species * n_mu * rb_size
    n_ang = ang_abc.shape[0]
    n_times = times.shape[0]
    parent, axis, nu, expo, lower, mu_start = basis_tables(ang_abc, basic_mu, n_mu)
    count = np.empty(n_mu, dtype=np.int64)
    for mu in range(n_mu):
        count[mu] = mu_start[mu + 1] - mu_start[mu]
    max_pairs = 0
    for i in range(first, last):
        max_pairs = max(max_pairs, offsets[i + 1] - offsets[i])
    rb_vals = np.empty(rb_size)
    rb_ders = np.empty(rb_size)
    inv_r = np.empty(max_pairs)
    unit = np.empty((3, max_pairs))
    pair_q = np.empty((max_pairs, rb_size))
    pair_f = np.empty((n_mu, max_pairs))
    pair_fp = np.empty((n_mu, max_pairs))
    mono = np.empty((n_ang, max_pairs))
    w = np.empty(max_pairs)
    s_mu = np.empty((n_mu, max_pairs))
    radial_part = np.empty(max_pairs)
    ang_grad = np.empty((3, max_pairs))
    moments = np.empty(n_moments)
    dmom = np.empty(n_moments)
    for i in range(first, last):
        ti = types[i]
        p0 = offsets[i]
        n_p = offsets[i + 1] - p0
        out = i if per_atom else row
        # per neighbour: f_mu(r), f'_mu(r), Q_b(r) and the unit vector (eq. 3-4)
        for m in range(n_p):
            p = p0 + m
            x, y, z = vec[p, 0], vec[p, 1], vec[p, 2]
            r = np.sqrt(x * x + y * y + z * z)
            ir = 1.0 / r
            inv_r[m] = ir
            unit[0, m] = x * ir
            unit[1, m] = y * ir
            unit[2, m] = z * ir
            chebyshev_basis(r, min_dist, max_dist, scaling, rb_vals, rb_ders)
            tj = types[nbr[p]]
            for mu in range(n_mu):
                fv = 0.0
                fd = 0.0
                for b in range(rb_size):
                    c = radial_coeffs[ti, tj, mu, b]
                    fv += c * rb_vals[b]
                    fd += c * rb_ders[b]
                pair_f[mu, m] = fv
                pair_fp[mu, m] = fd
            if want_params:
                for b in range(rb_size):
                    pair_q[m, b] = rb_vals[b]
        # angular monomials u^g of every neighbour, by recursion on the degree
        for m in range(n_p):
            mono[0, m] = 1.0
        for g in range(1, n_ang):
            pg = parent[g]
            ax = axis[g]
            for m in range(n_p):
                mono[g, m] = mono[pg, m] * unit[ax, m]
        # forward: M_{mu, g} = sum_p f_mu(r_p) u_p^g   (eq. 3)
        for mu in range(n_mu):
            base = mu_start[mu]
            for g in range(count[mu]):
                acc = 0.0
                for m in range(n_p):
                    acc += pair_f[mu, m] * mono[g, m]
                moments[base + g] = acc
        moments[mu_start[n_mu]:] = 0.0
        # products of moments (alpha_index_times), then the site energy (eq. 2)
        # (runs of one target are summed in a register, not through memory)
        t = 0
        while t < n_times:
            k = times[t, 3]
            acc = 0.0
            while t < n_times and times[t, 3] == k:
                acc += times[t, 2] * moments[times[t, 0]] * moments[times[t, 1]]
                t += 1
            moments[k] += acc
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
        t = n_times - 1
        while t >= 0:
            k = times[t, 3]
            dk = dmom[k]
            if dk == 0.0:
                while t >= 0 and times[t, 3] == k:
                    t -= 1
                continue
            while t >= 0 and times[t, 3] == k:
                wt = dk * times[t, 2]
                dmom[times[t, 0]] += wt * moments[times[t, 1]]
                dmom[times[t, 1]] += wt * moments[times[t, 0]]
                t -= 1
        # backward through the basic moments, monomial by monomial, vectors over neighbours:
        # s_mu[p] = sum_g dE/dM_{mu,g} u_p^g,  w_g[p] = sum_mu dE/dM_{mu,g} f_mu(r_p), and
        # d/d(vec) of f(r) u^g = f'(r) u^g u + f(r)/r (grad_u u^g - nu_g u^g u)
        for mu in range(n_mu):
            for m in range(n_p):
                s_mu[mu, m] = 0.0
        for m in range(n_p):
            radial_part[m] = 0.0
            ang_grad[0, m] = 0.0
            ang_grad[1, m] = 0.0
            ang_grad[2, m] = 0.0
        for g in range(n_ang):
            for m in range(n_p):
                w[m] = 0.0
            for mu in range(n_mu):
                if g >= count[mu]:
                    continue
                d = dmom[mu_start[mu] + g]
                for m in range(n_p):
                    s_mu[mu, m] += d * mono[g, m]
                    w[m] += d * pair_f[mu, m]
            if not want_forces:
                continue
            nu_g = nu[g]
            for m in range(n_p):
                radial_part[m] -= nu_g * w[m] * mono[g, m]
            for ax in range(3):
                e = expo[ax, g]
                if e != 0.0:
                    lo = lower[ax, g]
                    for m in range(n_p):
                        ang_grad[ax, m] += e * w[m] * mono[lo, m]
        if want_params:
            # dE_i/d radial_coeffs[ti, tj, mu, b] += Q_b(r_p) s_mu(p)
            for m in range(n_p):
                base = (ti * n_species + types[nbr[p0 + m]]) * n_mu * rb_size
                for mu in range(n_mu):
                    sm = s_mu[mu, m]
                    for b in range(rb_size):
                        grad[out, base + mu * rb_size + b] += sm * pair_q[m, b]
        if not want_forces:
            continue
        for m in range(n_p):
            fr = 0.0
            for mu in range(n_mu):
                fr += pair_fp[mu, m] * s_mu[mu, m]
            rp = fr + radial_part[m] * inv_r[m]
            pair_grad[p0 + m, 0] = rp * unit[0, m] + ang_grad[0, m] * inv_r[m]
            pair_grad[p0 + m, 1] = rp * unit[1, m] + ang_grad[1, m] * inv_r[m]
            pair_grad[p0 + m, 2] = rp * unit[2, m] + ang_grad[2, m] * inv_r[m]


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
