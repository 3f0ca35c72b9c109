"""The MTP basis: from a level to moments and their contractions (Novikov et al. 2021, sec. 2.1).

A scalar basis function B_alpha is a product of at most four moment tensors
M_{mu,nu} (mu <= 5, nu <= 10) whose tensor indices are contracted pairwise between
*different* factors (a self-trace only repeats a lower moment). It is a multigraph
whose vertices are moments labelled by mu, whose vertex degree is nu, and whose edges
are contracted index pairs; graphs that differ only by swapping identical moments are
one function. Its level is sum(2 + 4 mu + nu) and must not exceed lev_max.

`contraction_graphs(level)` enumerates them; `compile_basis(graphs)` turns them into
MLIP-2's representation:

- ``alpha_index_basic`` rows (mu, a, b, c): the component x^a y^b z^c of M_{mu, a+b+c};
- ``alpha_index_times`` rows (i1, i2, mult, k): moment[k] += mult * moment[i1] * moment[i2];
- ``alpha_moment_mapping``: which moments are the scalar basis functions.

Intermediate tensors are stored per group of free indices (the indices that will be
contracted with one not-yet-absorbed factor), as *sums over all index orderings* of
each multi-index; then every multiplicity is an integer, as MLIP-2's file format needs.
"""
from __future__ import annotations

import functools
import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from math import factorial

import numpy as np

MAX_MU = 5
MAX_NU = 10
MAX_FACTORS = 4

# Basis sizes of MLIP-2's untrained potentials, level -> (scalar basis functions, radial functions)
MLIP2_BASIS_SIZES = {
    2: (1, 1), 4: (2, 1), 6: (5, 2), 8: (9, 2), 10: (16, 3), 12: (29, 3), 14: (52, 4),
    16: (92, 4), 18: (163, 5), 20: (288, 5), 22: (500, 6), 24: (864, 6), 26: (1464, 6),
    28: (2445, 6),
}


@dataclass(frozen=True)
class ContractionGraph:
    """A scalar basis function: moments `mus` and the symmetric edge-multiplicity matrix."""

    mus: tuple[int, ...]
    edges: tuple[tuple[int, ...], ...]

    @property
    def nus(self) -> tuple[int, ...]:
        return tuple(sum(row) for row in self.edges)

    @property
    def level(self) -> int:
        return sum(2 + 4 * mu + nu for mu, nu in zip(self.mus, self.nus))


def _canonical(mus, edges):
    """The lexicographically smallest relabelling of a graph (at most 4! permutations)."""
    k = len(mus)
    best = None
    for perm in itertools.permutations(range(k)):
        key = (tuple(mus[p] for p in perm),
               tuple(tuple(edges[perm[a]][perm[b]] for b in range(k)) for a in range(k)))
        if best is None or key < best:
            best = key
    return best


def contraction_graphs(level: int) -> list[ContractionGraph]:
    """All scalar contractions with total level <= `level`, sorted by (level, factors, mus)."""
    found = set()
    for n_factors in range(1, MAX_FACTORS + 1):
        # each factor costs at least 2; edges cost 2 each (one index on either end)
        budget = level - 2 * n_factors
        if budget < 0:
            break
        pairs = list(itertools.combinations(range(n_factors), 2))
        for mus in itertools.combinations_with_replacement(range(MAX_MU + 1), n_factors):
            rest = budget - 4 * sum(mus)
            if rest < 0:
                continue
            max_edges = rest // 2
            for mults in _edge_multiplicities(len(pairs), max_edges):
                edges = [[0] * n_factors for _ in range(n_factors)]
                for (a, b), m in zip(pairs, mults):
                    edges[a][b] = edges[b][a] = m
                if any(sum(row) > MAX_NU for row in edges):
                    continue
                found.add(_canonical(mus, edges))
    graphs = [ContractionGraph(mus, edges) for mus, edges in found]
    graphs.sort(key=lambda g: (g.level, len(g.mus), g.mus, g.edges))
    return graphs


def _edge_multiplicities(n_pairs, max_total):
    """All tuples of n_pairs non-negative integers with sum <= max_total."""
    if n_pairs == 0:
        yield ()
        return
    for first in range(max_total + 1):
        for rest in _edge_multiplicities(n_pairs - 1, max_total - first):
            yield (first,) + rest


# ---------------------------------------------------------------------------------------
# Compilation into alpha_index_basic / alpha_index_times
# ---------------------------------------------------------------------------------------

def multi_indices(rank: int) -> list[tuple[int, int, int]]:
    """The (a, b, c) with a + b + c = rank, in MLIP-2's order (a descending, then b)."""
    return [(a, b, rank - a - b) for a in range(rank, -1, -1) for b in range(rank - a, -1, -1)]


def multinomial(m) -> int:
    """Number of index orderings with multi-index m: |m|! / (a! b! c!)."""
    return factorial(sum(m)) // (factorial(m[0]) * factorial(m[1]) * factorial(m[2]))


def _add(p, q):
    return (p[0] + q[0], p[1] + q[1], p[2] + q[2])


class _BasisBuilder:
    """Accumulates basic moments, intermediate moments and product rules, sharing repeats."""

    def __init__(self):
        self.dry: dict | None = None                  # key -> placeholder while costing an order
        self.dry_cost = 0
        self.basic: list[tuple[int, int, int, int]] = []
        self.basic_id: dict[tuple, int] = {}
        self.inter_id: dict[tuple, int] = {}          # key -> provisional id
        self.inter_terms: list[list[tuple]] = []      # id -> [(ref1, ref2, mult)]

    def basic_moment(self, mu, m):
        key = (mu, *m)
        if key not in self.basic_id:
            self.basic_id[key] = len(self.basic)
            self.basic.append(key)
        return ("b", self.basic_id[key])

    def intermediate(self, key, terms):
        if self.dry is not None:
            if key in self.inter_id:
                return ("t", self.inter_id[key])
            if key not in self.dry:
                self.dry[key] = len(self.dry)
                self.dry_cost += len(terms)
            return ("u", self.dry[key])
        if key not in self.inter_id:
            self.inter_id[key] = len(self.inter_terms)
            self.inter_terms.append(terms)
        return ("t", self.inter_id[key])

    def compile_graph(self, graph: ContractionGraph):
        """Moment reference of the scalar value of `graph`."""
        k = len(graph.mus)
        mus, edges = graph.mus, graph.edges
        if k == 1:
            return self.basic_moment(mus[0], (0, 0, 0))
        # The state after absorbing factors 0..s: a tensor with one index group per
        # remaining factor w (size edges-to-w); stored in "sum over orderings" form.
        # components: dict mapping tuple(multi-index per remaining factor) -> reference
        # Start by contracting factors 0 and 1.
        state = None
        state_key = None
        for s in range(1, k):
            remaining = list(range(s + 1, k))
            new_components = {}
            if s == 1:
                new_key = ("pair", mus[0], mus[1], edges[0][1],
                           tuple(edges[0][w] for w in remaining), tuple(edges[1][w] for w in remaining))
            else:
                new_key = ("absorb", state_key, mus[s],
                           tuple(edges[s][w] for w in remaining))
            # enumerate output multi-indices per remaining group
            group_sizes = [sum(edges[v][w] for v in range(s + 1)) for w in remaining]
            terms_for = {}
            if s == 1:
                kc = edges[0][1]
                for mc in multi_indices(kc):
                    parts0 = [multi_indices(edges[0][w]) for w in remaining]
                    parts1 = [multi_indices(edges[1][w]) for w in remaining]
                    for p0 in itertools.product(*parts0):
                        for p1 in itertools.product(*parts1):
                            m0, m1 = mc, mc
                            mult = multinomial(mc)
                            for q in p0:
                                m0 = _add(m0, q)
                                mult *= multinomial(q)
                            for q in p1:
                                m1 = _add(m1, q)
                                mult *= multinomial(q)
                            out = tuple(_add(a, b) for a, b in zip(p0, p1))
                            r0 = self.basic_moment(mus[0], m0)
                            r1 = self.basic_moment(mus[1], m1)
                            terms_for.setdefault(out, []).append((r0, r1, mult))
            else:
                # state groups: index 0 is the group to factor s, others to `remaining`
                for comp_key, ref in state.items():
                    mc, rest_parts = comp_key[0], comp_key[1:]
                    parts_s = [multi_indices(edges[s][w]) for w in remaining]
                    for ps in itertools.product(*parts_s):
                        ms = mc
                        mult = 1
                        for q in ps:
                            ms = _add(ms, q)
                            mult *= multinomial(q)
                        out = tuple(_add(a, b) for a, b in zip(rest_parts, ps))
                        rs = self.basic_moment(mus[s], ms)
                        terms_for.setdefault(out, []).append((ref, rs, mult))
            for out, terms in terms_for.items():
                merged = {}
                for r1, r2, mult in terms:
                    pair = (r1, r2) if r1 <= r2 else (r2, r1)
                    merged[pair] = merged.get(pair, 0) + mult
                new_components[out] = self.intermediate(
                    (new_key, out), [(a, b, m) for (a, b), m in merged.items()])
            if not remaining:
                return new_components[()]
            # re-key the state so that group 0 is the one to the next factor
            state = new_components
            state_key = (new_key, tuple(group_sizes))
        raise AssertionError("unreachable")

    def finish(self, scalar_refs):
        """Number the moments MLIP-2's way: basics first, then intermediates in order."""
        n_basic = len(self.basic)
        # keep only intermediates reachable from the scalars, in dependency order
        order, seen = [], set()

        def visit(ref):
            if ref[0] == "b" or ref[1] in seen:
                return
            seen.add(ref[1])
            for r1, r2, _ in self.inter_terms[ref[1]]:
                visit(r1)
                visit(r2)
            order.append(ref[1])

        for ref in scalar_refs:
            visit(ref)
        # basic moments only used by pruned intermediates are dropped too
        used_basic = set()
        for t in order:
            for r1, r2, _ in self.inter_terms[t]:
                for r in (r1, r2):
                    if r[0] == "b":
                        used_basic.add(r[1])
        for ref in scalar_refs:
            if ref[0] == "b":
                used_basic.add(ref[1])
        basic_rows = sorted((self.basic[i] for i in used_basic))
        basic_index = {row: n for n, row in enumerate(basic_rows)}
        n_basic = len(basic_rows)
        inter_index = {t: n_basic + n for n, t in enumerate(order)}

        def index(ref):
            return basic_index[self.basic[ref[1]]] if ref[0] == "b" else inter_index[ref[1]]

        times = []
        for t in order:
            for r1, r2, mult in self.inter_terms[t]:
                i1, i2 = sorted((index(r1), index(r2)))
                times.append((i1, i2, mult, inter_index[t]))
        mapping = [index(ref) for ref in scalar_refs]
        return (np.array(basic_rows, dtype=np.int64).reshape(-1, 4),
                np.array(times, dtype=np.int64).reshape(-1, 4),
                np.array(mapping, dtype=np.int64),
                n_basic + len(order))


def _relabel(graph, order):
    mus = tuple(graph.mus[v] for v in order)
    edges = tuple(tuple(graph.edges[a][b] for b in order) for a in order)
    return ContractionGraph(mus, edges)


def compile_basis(graphs):
    """(alpha_index_basic, alpha_index_times, alpha_moment_mapping, alpha_moments_count).

    Each graph is contracted in the vertex order that adds the fewest new products, given
    the intermediates already built for earlier graphs (greedy; ties keep the first order).
    """
    builder = _BasisBuilder()
    refs = []
    for graph in graphs:
        best, best_cost = graph, None
        if len(graph.mus) > 2:
            seen = set()
            for order in itertools.permutations(range(len(graph.mus))):
                candidate = _relabel(graph, order)
                if candidate in seen:
                    continue
                seen.add(candidate)
                builder.dry, builder.dry_cost = {}, 0
                builder.compile_graph(candidate)
                if best_cost is None or builder.dry_cost < best_cost:
                    best, best_cost = candidate, builder.dry_cost
            builder.dry = None
        refs.append(builder.compile_graph(best))
    return builder.finish(refs)


BASIS_FORMAT = 2   # bump when compile_basis changes, so that disk caches are rebuilt


def _cache_file(level):
    root = os.environ.get("MTPLIB_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mtplib")
    return Path(root) / f"basis_v{BASIS_FORMAT}_level{level:02d}.npz"


@functools.lru_cache(maxsize=None)
def _basis_cached(level):
    path = _cache_file(level)
    try:
        with np.load(path) as data:
            return (data["basic"], data["times"], data["mapping"], int(data["moments"]))
    except (OSError, KeyError, ValueError):
        pass
    basic, times, mapping, moments = compile_basis(contraction_graphs(level))
    try:   # best effort: a read-only home only costs the compilation next time
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.npz")
        np.savez(tmp, basic=basic, times=times, mapping=mapping, moments=moments)
        os.replace(tmp, path)
    except OSError:
        pass
    return basic, times, mapping, moments


def basis_for_level(level: int):
    """The MLIP-2-compatible basis of an untrained potential of `level` (cached)."""
    if level % 2 or not 2 <= level <= 28:
        raise ValueError(f"MTP level must be an even number from 2 to 28, got {level}")
    return tuple(x.copy() if isinstance(x, np.ndarray) else x for x in _basis_cached(level))
