"""Plain numpy references for the MTP, independent of the numba kernels.

`reference_evaluate` follows MLIP-2's own algorithm (forward-mode moment Jacobians,
`MLMTPR::CalcSiteEnergyDers`), not the kernels' reverse mode, and takes its
neighbours from ASE. `graph_value` contracts a basis function's full moment tensors
with einsum, independently of `alpha_index_times`.
"""
import string

import numpy as np
from ase.neighborlist import primitive_neighbor_list


def chebyshev(r, pot):
    """Q_b(r) and dQ_b/dr, (len(r), radial_basis_size); RBChebyshev_repuls freezes them at
    min_dist below it (MLIP-2's RadialBasis_Chebyshev_repuls::RB_Calc)."""
    repulsive = getattr(pot, "radial_basis_type", "RBChebyshev") == "RBChebyshev_repuls"
    frozen = (r <= pot.min_dist) if repulsive else np.zeros(np.shape(r), dtype=bool)
    r = np.where(frozen, pot.min_dist, r)
    xi = (2 * r - (pot.min_dist + pot.max_dist)) / (pot.max_dist - pot.min_dist)
    vals = np.polynomial.chebyshev.chebvander(xi, pot.radial_basis_size - 1)
    dvals = np.stack([np.polynomial.chebyshev.chebval(xi, np.polynomial.chebyshev.chebder(np.eye(pot.radial_basis_size)[b]))
                      for b in range(pot.radial_basis_size)], axis=-1) * 2 / (pot.max_dist - pot.min_dist)
    env = (r - pot.max_dist) ** 2
    denv = 2 * (r - pot.max_dist)
    ders = pot.scaling * (dvals * env[..., None] + vals * denv[..., None])
    return pot.scaling * vals * env[..., None], np.where(frozen[..., None], 0.0, ders)


def repulsion(r, pot):
    """MLIP-2's repulsive core per pair (MLMTPR::CalcSiteEnergyDers): energy and dE/dr, zero
    unless RBChebyshev_repuls and r < min_dist."""
    if getattr(pot, "radial_basis_type", "RBChebyshev") != "RBChebyshev_repuls":
        return np.zeros_like(r), np.zeros_like(r)
    close = r < pot.min_dist
    e = 10000.0 * (np.exp(-10.0 * (r - 1.0)) - np.exp(-10.0 * (pot.min_dist - 1.0)))
    de = -10.0 * 10000.0 * np.exp(-10.0 * (r - 1.0))
    return np.where(close, e, 0.0), np.where(close, de, 0.0)


def reference_evaluate(pot, atoms, types):
    i_idx, j_idx, D = primitive_neighbor_list("ijD", atoms.pbc, atoms.cell.array, atoms.positions,
                                              pot.max_dist, self_interaction=False)
    n = len(atoms)
    basic = pot.alpha_index_basic
    forces = np.zeros((n, 3))
    virial = np.zeros((3, 3))
    site = np.zeros(n)
    for i in range(n):
        sel = np.flatnonzero(i_idx == i)
        d = D[sel]
        r = np.linalg.norm(d, axis=1)
        q, dq = chebyshev(r, pot)
        c = pot.radial_coeffs[types[i], types[j_idx[sel]]]            # (m, mu, b)
        f = np.einsum("mub,mb->mu", c, q)
        fp = np.einsum("mub,mb->mu", c, dq)
        moments = np.zeros(pot.alpha_moments_count)
        jac = np.zeros((pot.alpha_moments_count, len(sel), 3))
        for k, (mu, a, b, cc) in enumerate(basic):
            nu = a + b + cc
            mono = d[:, 0] ** a * d[:, 1] ** b * d[:, 2] ** cc
            val = f[:, mu] / r ** nu
            der = fp[:, mu] / r ** nu - nu * val / r
            moments[k] = np.sum(val * mono)
            grad = (der * mono / r)[:, None] * d
            for axis, power in enumerate((a, b, cc)):
                if power:
                    e = [a, b, cc]
                    e[axis] -= 1
                    grad[:, axis] += val * power * d[:, 0] ** e[0] * d[:, 1] ** e[1] * d[:, 2] ** e[2]
            jac[k] = grad
        for i1, i2, mult, k in pot.alpha_index_times:
            m1, m2 = moments[i1], moments[i2]
            jac[k] += mult * (m1 * jac[i2] + m2 * jac[i1])
            moments[k] += mult * m1 * m2
        site[i] = pot.species_coeffs[types[i]] + pot.moment_coeffs @ moments[pot.alpha_moment_mapping]
        g = np.einsum("s,smx->mx", pot.moment_coeffs, jac[pot.alpha_moment_mapping])
        e_rep, de_rep = repulsion(r, pot)
        site[i] += e_rep.sum()
        g = g + (de_rep / r)[:, None] * d
        np.add.at(forces, i, g.sum(axis=0))
        np.add.at(forces, j_idx[sel], -g)
        virial += d.T @ g
    return site, forces, virial


def full_moment(pot, d, types_c, types_n, mu, nu):
    """M_{mu,nu} of one neighbourhood as a full rank-nu tensor (3**nu entries)."""
    r = np.linalg.norm(d, axis=1)
    q, _ = chebyshev(r, pot)
    f = np.einsum("mb,mb->m", pot.radial_coeffs[types_c, types_n, mu], q)
    u = d / r[:, None]
    tensor = f
    for _ in range(nu):
        tensor = tensor[..., None] * u.reshape((u.shape[0],) + (1,) * (tensor.ndim - 1) + (3,))
    return tensor.sum(axis=0)


def graph_value(pot, graph, d, types_c, types_n):
    """A basis function (a contraction graph from mtplib.basis) by einsum over full tensors."""
    letters = iter(string.ascii_letters)
    k = len(graph.mus)
    labels = [[] for _ in range(k)]
    for a in range(k):
        for b in range(a + 1, k):
            for _ in range(graph.edges[a][b]):
                ch = next(letters)
                labels[a].append(ch)
                labels[b].append(ch)
    tensors = [full_moment(pot, d, types_c, types_n, mu, len(lab)) for mu, lab in zip(graph.mus, labels)]
    spec = ",".join("".join(lab) for lab in labels) + "->"
    return float(np.einsum(spec, *tensors))
