"""A fused numba kernel for grading: energies, pair gradients AND dE/dtheta in one pass.

`site_energies_pair_and_parameter_gradients` runs the shared block kernel
`mtplib.kernels.mtp._mtp_block` with forces and parameter gradients on, so the energy and
forces are bit-for-bit those of `MTPotential.evaluate`: dE_i/d moment_coeffs = B_alpha,
dE_i/d species_coeffs = 1, dE_i/d radial_coeffs = sum_p Q_b(r_p) s_mu(p), accumulated in the
loop that already walks the basic moments for the forces. Rows are either per atom (neighbourhood mode) or summed per
block of atoms (configuration mode: the caller sums the blocks), which avoids an
(n_atoms, n_params) array when only the configuration's row is needed.
"""
import numpy as np
from numba import njit, prange

from ..kernels.mtp import _mtp_block


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
        _mtp_block(first, last, True, True, per_atom, np.int64(blk), types, offsets, nbr, vec,
                   radial_coeffs, scaling, min_dist, max_dist, basic_mu, basic_ang, ang_abc, times,
                   mapping, species_coeffs, moment_coeffs, n_moments, site_energy, pair_grad, grad)
    return site_energy, pair_grad, grad
