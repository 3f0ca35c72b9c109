#!/usr/bin/env python3
"""The product count of the basis (the lever of issue #21's kernel goal), ours against MLIP-2's.

    python benchmarks/bench_basis_products.py [--levels 16 20] [--mlip2 DIR] [--search]

Per level: basic moments, products (alpha_index_times rows) and moments of
`mtplib.basis.basis_for_level`; the same of MLIP-2's untrained potential DIR/<level>.mtp
when --mlip2 is given; and whether the two sets of scalar basis functions span the same
space (the ranks of their values, and of both together, on random neighbourhoods: equal
ranks mean the same functions up to a linear map, so one table could stand in for the
other). With --search, a local search over the order in which each graph's factors are
absorbed (given all other graphs' intermediates) says how far reordering alone gets.
"""
import argparse
import itertools
import time
from pathlib import Path

import numpy as np

from mtplib.basis import _BasisBuilder, _relabel, basis_for_level, compile_basis, contraction_graphs
from mtplib.io.mtp import read_mtp


def scalar_values(basic, times, mapping, n_moments, f, u):
    """The scalar basis functions of one neighbourhood: radial values f (m, n_mu), unit
    vectors u (m, 3)."""
    mom = np.zeros(n_moments)
    for k, (mu, a, b, c) in enumerate(basic):
        mom[k] = np.sum(f[:, mu] * u[:, 0] ** a * u[:, 1] ** b * u[:, 2] ** c)
    for i1, i2, mult, k in times:
        mom[k] += mult * mom[i1] * mom[i2]
    return mom[mapping]


def rank(values):
    s = np.linalg.svd(values / np.linalg.norm(values, axis=0), compute_uv=False)
    return int((s > 1e-9 * s[0]).sum())


def reorder_search(level):
    """Products after a local search over absorption orders (rounds until no gain)."""
    graphs = contraction_graphs(level)
    orders = []
    for g in graphs:
        seen, cands = set(), []
        for o in itertools.permutations(range(len(g.mus))):
            c = _relabel(g, o)
            if c not in seen:
                seen.add(c)
                cands.append(c)
        orders.append(cands)

    def total(choice):
        builder = _BasisBuilder()
        refs = [builder.compile_graph(c) for c in choice]
        return len(builder.finish(refs)[1])

    # start from compile_basis's greedy choice: per graph the order adding the fewest products
    builder, choice = _BasisBuilder(), []
    for g, cands in zip(graphs, orders):
        pick, pick_cost = g, None
        if len(g.mus) > 2:
            for c in cands:
                builder.dry, builder.dry_cost = {}, 0
                builder.compile_graph(c)
                if pick_cost is None or builder.dry_cost < pick_cost:
                    pick, pick_cost = c, builder.dry_cost
            builder.dry = None
        builder.compile_graph(pick)
        choice.append(pick)
    best = total(choice)
    assert best == len(compile_basis(graphs)[1])
    improved = True
    while improved:
        improved = False
        for idx, cands in enumerate(orders):
            for c in cands:
                old, choice[idx] = choice[idx], c
                t = total(choice)
                if t < best:
                    best, improved = t, True
                else:
                    choice[idx] = old
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--levels", type=int, nargs="+", default=[16])
    ap.add_argument("--mlip2", help="directory of MLIP-2's untrained_mtps (NN.mtp)")
    ap.add_argument("--search", action="store_true")
    ap.add_argument("--samples", type=int, default=300)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    for level in args.levels:
        basic, times, mapping, n_mom = basis_for_level(level)
        print(f"level {level}: mtplib {len(basic)} basic moments, {len(times)} products, "
              f"{n_mom} moments, {len(mapping)} scalars")
        if args.search:
            t = time.perf_counter()
            print(f"  reordering the absorption of factors (local search): "
                  f"{reorder_search(level)} products ({time.perf_counter() - t:.0f} s)")
        if not args.mlip2:
            continue
        path = Path(args.mlip2) / f"{level:02d}.mtp"
        other = read_mtp(path)
        b2, t2 = np.asarray(other["alpha_index_basic"]), np.asarray(other["alpha_index_times"])
        m2, n2 = np.asarray(other["alpha_moment_mapping"]), other["alpha_moments_count"]
        print(f"  MLIP-2 {path}: {len(b2)} basic moments, {len(t2)} products, {n2} moments, "
              f"{len(m2)} scalars")
        n_mu = int(max(basic[:, 0].max(), b2[:, 0].max())) + 1
        ours, theirs = [], []
        for _ in range(args.samples):
            u = rng.normal(size=(12, 3))
            u /= np.linalg.norm(u, axis=1)[:, None]
            f = rng.normal(size=(12, n_mu))
            ours.append(scalar_values(basic, times, mapping, n_mom, f, u))
            theirs.append(scalar_values(b2, t2, m2, n2, f, u))
        ours, theirs = np.array(ours), np.array(theirs)
        print(f"  rank of the scalars on {args.samples} random neighbourhoods: mtplib "
              f"{rank(ours)}, MLIP-2 {rank(theirs)}, both together {rank(np.hstack([ours, theirs]))}")


if __name__ == "__main__":
    main()
