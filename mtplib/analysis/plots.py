"""Figures (PNG) of errors, seed scans and active-learning progress.

Every function takes data and a path, writes one PNG and returns the path.  Figures are made
with :class:`matplotlib.figure.Figure` and the Agg canvas, never through ``pyplot``, so no
global backend is set and nothing stays open.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mtplib.analysis.errors import QUANTITIES, metric_label, paired_values

__all__ = ["parity_plots", "error_histograms", "seed_error_plot", "learning_curve_plot",
           "robust_range"]

Sets = Mapping[str, tuple[Sequence[Atoms], Sequence[Mapping]]]

# axis labels of the values paired_values returns, and of their errors
_VALUE_LABEL = {"energy_per_atom": "energy per atom (eV/atom)",
                "forces": "force component (eV/Å)",
                "stress": "stress component (GPa)"}


def _figure(ncols: int, size: float = 4.2) -> Figure:
    # fixed margins: constrained layout would double the drawing time
    fig = Figure(figsize=(size * ncols, size * 0.9))
    fig.subplots_adjust(left=0.06 if ncols > 2 else 0.09, right=0.98, bottom=0.14, top=0.88,
                        wspace=0.3)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path


def _colours(n: int) -> list:
    cycle = ["C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9"]
    return [cycle[i % len(cycle)] for i in range(n)]


def _pairs(sets: Sets) -> dict[str, dict]:
    return {name: paired_values(ref, pred) for name, (ref, pred) in sets.items()}


def robust_range(values, coverage: float = 0.99) -> tuple[float, float, int]:
    """(lo, hi, n outside): the range of the central `coverage` of `values` (quantiles),
    widened by 10 %; a few extreme values (e.g. liquid frames among crystals) do not stretch
    a panel. All values when fewer than 100."""
    v = np.asarray(values, float).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan, 0
    if v.size < 100:
        lo, hi = float(v.min()), float(v.max())
    else:
        tail = (1 - coverage) / 2
        lo, hi = (float(x) for x in np.quantile(v, [tail, 1 - tail]))
    pad = 0.1 * (hi - lo) or 0.5 * max(abs(hi), 1e-3)
    lo, hi = lo - pad, hi + pad
    return lo, hi, int(np.count_nonzero((v < lo) | (v > hi)))


def parity_plots(sets: Sets, path: str | os.PathLike) -> Path:
    """Predicted against reference energy per atom, force and stress components, one panel
    each; every set (e.g. train, test) in its own colour, the line y = x, RMSE in the legend.
    Each panel's range covers the central 99 % of its values (:func:`robust_range`); the
    points beyond it are counted in the panel."""
    pairs = _pairs(sets)
    fig = _figure(len(QUANTITIES))
    axes = fig.subplots(1, len(QUANTITIES))
    for ax, (q, (label, unit, factor)) in zip(axes, QUANTITIES.items()):
        values = []
        for (name, p), colour in zip(pairs.items(), _colours(len(pairs))):
            ref, pred = p[q]["ref"], p[q]["pred"]
            if ref.size == 0:
                continue
            rmse = float(np.sqrt(np.mean((pred - ref) ** 2))) * factor
            ax.scatter(ref, pred, s=4, alpha=0.6, color=colour, rasterized=True,
                       label=f"{name}: RMSE {rmse:.3g} {unit}")
            values += [ref, pred]
        if values:
            ref_all = np.concatenate(values[::2])
            lo, hi, _ = robust_range(np.concatenate(values))
            outside = int(np.count_nonzero(np.any(
                [(v < lo) | (v > hi) for v in (ref_all, np.concatenate(values[1::2]))], axis=0)))
            ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
            ax.set_xlim(lo, hi)
            ax.set_ylim(lo, hi)
            ax.legend(fontsize="small", loc="upper left")
            if outside:
                ax.text(0.98, 0.02, f"{outside} of {ref_all.size} points beyond the range\n"
                        f"(largest |reference| {np.abs(ref_all).max():.3g})", ha="right",
                        va="bottom", fontsize="x-small", transform=ax.transAxes)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(label)
        ax.set_xlabel(f"reference {_VALUE_LABEL[q]}")
        ax.set_ylabel(f"predicted {_VALUE_LABEL[q]}")
    return _save(fig, path)


def error_histograms(sets: Sets, path: str | os.PathLike, bins: int = 50) -> Path:
    """Histograms of the errors (predicted - reference) of energy per atom (meV/atom), force
    components (eV/Å) and stress components (GPa), one panel each, a colour per set."""
    pairs = _pairs(sets)
    fig = _figure(len(QUANTITIES))
    axes = fig.subplots(1, len(QUANTITIES))
    for ax, (q, (label, unit, factor)) in zip(axes, QUANTITIES.items()):
        errors = {name: (p[q]["pred"] - p[q]["ref"]) * factor for name, p in pairs.items()}
        errors = {k: v for k, v in errors.items() if v.size}
        if errors:
            everything = np.concatenate(list(errors.values()))
            lim = float(np.abs(everything).max()) or 1.0
            edges = np.linspace(-lim, lim, bins + 1)
            for (name, e), colour in zip(errors.items(), _colours(len(errors))):
                rmse = float(np.sqrt(np.mean(e**2)))
                ax.hist(e, bins=edges, histtype="step", color=colour, lw=1.2,
                        label=f"{name}: RMSE {rmse:.3g}")
            ax.legend(fontsize="small")
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(label)
        ax.set_xlabel(f"error ({unit})")
        ax.set_ylabel("count")
    return _save(fig, path)


MIN_BOX_RUNS = 5
LEARNING_CURVE_NOTE = (
    "Converged when every MD run survives its steps. The test set is fixed (stage-2 "
    "structures, never trained on); its error may rise a little as active learning adds\n"
    "configurations far from it (liquid, hot crystals): the potential trades some accuracy "
    "near the test structures for coverage. A large rise points to too small a level.")


def _finite(v) -> bool:
    return isinstance(v, (int, float, np.number)) and math.isfinite(float(v))


def seed_error_plot(table: Sequence[Mapping], metric: str, path: str | os.PathLike,
                    label_key: str = "seed") -> Path:
    """The spread of ``metric`` (e.g. a test force RMSE) over the runs of a seed scan: a box
    plot with every run as a point, and the runs sorted as bars; the best (smallest) is
    marked.  Rows whose metric is missing or not finite (failed runs) are counted in the
    title and left out."""
    rows = [r for r in table if _finite(r.get(metric))]
    n_failed = len(table) - len(rows)
    name = metric_label(metric)
    with_box = len(rows) >= MIN_BOX_RUNS       # a box plot of 2 values says nothing
    fig = _figure(2 if with_box else 1, size=4.2 if with_box else 5.0)
    if with_box:
        ax_box, ax_bar = fig.subplots(1, 2, width_ratios=[1, 2])
    else:
        fig.subplots_adjust(left=0.17)
        ax_box, ax_bar = None, fig.subplots(1, 1)
    title = f"{name} of {len(rows)} {label_key}s" + (f", {n_failed} without a value"
                                                     if n_failed else "")
    fig.suptitle(title)
    if not rows:
        ax_bar.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax_bar.transAxes)
        return _save(fig, path)
    values = np.array([float(r[metric]) for r in rows])
    labels = [str(r.get(label_key, i)) for i, r in enumerate(rows)]
    best = int(np.argmin(values))

    if with_box:
        ax_box.boxplot(values, widths=0.5)
        jitter = np.random.default_rng(0).uniform(-0.12, 0.12, values.size)
        ax_box.scatter(1 + jitter, values, s=14, color="C0", alpha=0.7, zorder=3)
        ax_box.scatter([1 + jitter[best]], [values[best]], s=80, marker="*", color="C3",
                       zorder=4)
        ax_box.set_xticks([1], [f"{values.size} {label_key}s"])
        ax_box.set_ylabel(name)

    order = np.argsort(values, kind="stable")
    colours = ["C3" if i == best else "C0" for i in order]
    ax_bar.bar(range(values.size), values[order], color=colours)
    ax_bar.set_xticks(range(values.size), [labels[i] for i in order],
                      rotation=90 if values.size > 12 else 0, fontsize="small")
    ax_bar.set_xlabel(f"{label_key} (sorted, best in red)")
    ax_bar.set_ylabel(name)
    ax_bar.axhline(values[best], color="C3", lw=0.8, ls="--",
                   label=f"best: {label_key} {labels[best]}, {values[best]:.4g}")
    ax_bar.set_ylim(0, 1.3 * values.max())      # head room: the legend sits above the bars
    ax_bar.legend(fontsize="small", loc="upper left")
    return _save(fig, path)


def learning_curve_plot(records: Sequence[Mapping], path: str | os.PathLike) -> Path:
    """Active-learning progress: MD steps survived per scenario and the test force RMSE,
    against the iteration.  Each record has ``iteration``, ``steps_survived`` (an int or
    ``{scenario: int}``) and ``force_rmse_test``; missing values are left out."""
    records = sorted(records, key=lambda r: r.get("iteration", 0))
    fig = _figure(2)
    fig.subplots_adjust(bottom=0.24, top=0.86)
    ax_steps, ax_rmse = fig.subplots(1, 2)
    fig.suptitle("Active learning: MD steps survived and test error per iteration")
    fig.text(0.01, 0.01, LEARNING_CURVE_NOTE, fontsize="x-small", va="bottom", wrap=True)

    series: dict[str, list[tuple[float, float]]] = {}
    for r in records:
        steps = r.get("steps_survived")
        if steps is None:
            continue
        if not isinstance(steps, Mapping):
            steps = {"steps": steps}
        for scenario, n in steps.items():
            if _finite(n):
                series.setdefault(str(scenario), []).append((r["iteration"], float(n)))
    for (scenario, pts), colour in zip(series.items(), _colours(len(series))):
        x, y = zip(*pts)
        ax_steps.plot(x, y, "o-", color=colour, label=scenario)
    if series:
        ax_steps.legend(fontsize="small")
    else:
        ax_steps.text(0.5, 0.5, "no data", ha="center", va="center",
                      transform=ax_steps.transAxes)
    ax_steps.set_xlabel("iteration")
    ax_steps.set_ylabel("steps survived")

    pts = [(r["iteration"], float(r["force_rmse_test"])) for r in records
           if _finite(r.get("force_rmse_test"))]
    if pts:
        x, y = zip(*pts)
        ax_rmse.plot(x, y, "o-", color="C3")
    else:
        ax_rmse.text(0.5, 0.5, "no data", ha="center", va="center",
                     transform=ax_rmse.transAxes)
    ax_rmse.set_xlabel("iteration")
    ax_rmse.set_ylabel("test force RMSE (eV/Å)")
    for ax in (ax_steps, ax_rmse):
        ax.xaxis.get_major_locator().set_params(integer=True)
    return _save(fig, path)
