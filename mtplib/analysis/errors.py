"""Training and test errors, as in eqs. 8-10 of Novikov et al., Mach. Learn.: Sci. Technol.
2, 025002 (2021) ("The MLIP package").

Reference labels come from ``atoms.calc.results`` (a SinglePointCalculator, as ``ase.io``
and :mod:`mtplib.io.cfg` attach them); predictions are dicts with 'energy', 'forces' and
'stress' (ASE sign, eV/Å³, Voigt order).  Errors are reported per quantity as

* ``energy_per_atom``: (E_pred - E_ref) / N, in meV/atom              (eq. 8)
* ``forces``: every Cartesian component of F_pred - F_ref, in eV/Å     (eq. 9)
* ``stress``: every Voigt component of σ_pred - σ_ref, in GPa          (eq. 10)

each with MAE, RMSE, max absolute error, the number of values ``n`` and of configurations
``n_configs``, and ``n_skipped``: configurations without that quantity in the reference or
the prediction (and, for stress, non-periodic ones).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list

__all__ = ["EV_PER_A3_TO_GPA", "QUANTITIES", "paired_values", "error_metrics",
           "format_error_table", "write_errors_json", "min_distance", "describe_metric"]

EV_PER_A3_TO_GPA = 160.21766208  # 1 eV/Å³ in GPa

# name -> (label, unit of the errors, factor from paired_values' unit to the error unit)
QUANTITIES = {
    "energy_per_atom": ("energy/atom", "meV/atom", 1000.0),
    "forces": ("forces", "eV/Å", 1.0),
    "stress": ("stress", "GPa", 1.0),
}


def metric_label(metric: str) -> str:
    """'test.forces.rmse' -> 'test force RMSE (eV/Å)' (an axis label); other names as given."""
    parts = metric.split(".")
    if len(parts) != 3 or parts[1] not in QUANTITIES:
        return metric
    name, quantity, statistic = parts
    label, unit, _ = QUANTITIES[quantity]
    label = {"forces": "force", "energy/atom": "energy"}.get(label, label)
    return f"{name} {label} {statistic.upper()} ({unit})"


def describe_metric(metric: str, value: float) -> str:
    """'test.forces.rmse', 0.0326 -> 'test force RMSE = 0.0326 eV/Å' (a console line's
    words for a `set.quantity.statistic` metric)."""
    parts = metric.split(".")
    if len(parts) != 3 or parts[1] not in QUANTITIES:
        return f"{metric} = {value:.4g}"
    name, quantity, statistic = parts
    label, unit, _ = QUANTITIES[quantity]
    label = {"forces": "force", "energy/atom": "energy"}.get(label, label)
    return f"{name} {label} {statistic.upper()} = {value:.4g} {unit}"


def _voigt(stress) -> np.ndarray:
    stress = np.asarray(stress, dtype=float)
    if stress.shape == (3, 3):
        return stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
    return stress.reshape(6)


def paired_values(reference: Sequence[Atoms], predicted: Sequence[Mapping]
                  ) -> dict[str, dict]:
    """Reference and predicted values side by side, per quantity.

    Returns ``{quantity: {"ref": array, "pred": array, "n_configs": int, "n_skipped": int}}``
    with energies per atom in eV/atom, force components in eV/Å (flattened) and stress
    components in GPa (flattened).
    """
    if len(reference) != len(predicted):
        raise ValueError(f"{len(reference)} reference configurations but "
                         f"{len(predicted)} predictions")
    out = {q: {"ref": [], "pred": [], "n_configs": 0, "n_skipped": 0} for q in QUANTITIES}
    for i, (atoms, pred) in enumerate(zip(reference, predicted)):
        ref = atoms.calc.results if atoms.calc is not None else {}
        n = len(atoms)
        # energy per atom
        e_ref, e_pred = ref.get("energy"), pred.get("energy")
        if e_ref is not None and e_pred is not None and n > 0:
            out["energy_per_atom"]["ref"].append(np.array([float(e_ref) / n]))
            out["energy_per_atom"]["pred"].append(np.array([float(e_pred) / n]))
            out["energy_per_atom"]["n_configs"] += 1
        else:
            out["energy_per_atom"]["n_skipped"] += 1
        # forces
        f_ref, f_pred = ref.get("forces"), pred.get("forces")
        if f_ref is not None and f_pred is not None:
            f_ref, f_pred = np.asarray(f_ref, float), np.asarray(f_pred, float)
            if f_ref.shape != (n, 3) or f_pred.shape != (n, 3):
                raise ValueError(f"configuration {i}: forces of shape {f_ref.shape} "
                                 f"(reference) and {f_pred.shape} (predicted) for {n} atoms")
            out["forces"]["ref"].append(f_ref.ravel())
            out["forces"]["pred"].append(f_pred.ravel())
            out["forces"]["n_configs"] += 1
        else:
            out["forces"]["n_skipped"] += 1
        # stress
        s_ref, s_pred = ref.get("stress"), pred.get("stress")
        if s_ref is not None and s_pred is not None and atoms.pbc.all():
            out["stress"]["ref"].append(_voigt(s_ref) * EV_PER_A3_TO_GPA)
            out["stress"]["pred"].append(_voigt(s_pred) * EV_PER_A3_TO_GPA)
            out["stress"]["n_configs"] += 1
        else:
            out["stress"]["n_skipped"] += 1
    for q in out.values():
        q["ref"] = np.concatenate(q["ref"]) if q["ref"] else np.zeros(0)
        q["pred"] = np.concatenate(q["pred"]) if q["pred"] else np.zeros(0)
    return out


def _stats(diff: np.ndarray) -> dict:
    if diff.size == 0:
        return {"mae": None, "rmse": None, "max": None}
    a = np.abs(diff)
    return {"mae": float(a.mean()), "rmse": float(np.sqrt(np.mean(diff**2))),
            "max": float(a.max())}


def error_metrics(reference: Sequence[Atoms], predicted: Sequence[Mapping]) -> dict:
    """MAE, RMSE and max absolute error of energy per atom, forces and stress.

    Returns ``{"energy_per_atom": {...}, "forces": {...}, "stress": {...}}``; each entry has
    ``unit``, ``mae``, ``rmse``, ``max`` (None when no configuration has the quantity),
    ``n`` (values), ``n_configs`` and ``n_skipped``.  ``forces`` also has
    ``relative_rmse`` = RMS(ΔF)/RMS(F_ref), MLIP's relative force error.
    """
    pairs = paired_values(reference, predicted)
    metrics = {}
    for name, (_, unit, factor) in QUANTITIES.items():
        p = pairs[name]
        diff = (p["pred"] - p["ref"]) * factor
        metrics[name] = {"unit": unit, **_stats(diff), "n": int(diff.size),
                         "n_configs": p["n_configs"], "n_skipped": p["n_skipped"]}
    f = pairs["forces"]
    rms_ref = float(np.sqrt(np.mean(f["ref"] ** 2))) if f["ref"].size else 0.0
    metrics["forces"]["relative_rmse"] = (metrics["forces"]["rmse"] / rms_ref
                                          if rms_ref > 0 else None)
    return metrics


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:#.4g}" if 1e-4 <= abs(v) < 1e5 or v == 0 else f"{v:.3e}"


def format_error_table(metrics: Mapping) -> str:
    """An aligned text table of one :func:`error_metrics` result or of several named ones
    (``{"train": m1, "test": m2}``): rows energy/atom, forces, stress; columns MAE, RMSE,
    max and N (values; configurations skipped in brackets)."""
    named = {"": metrics} if "forces" in metrics else dict(metrics)
    rows = []
    for set_name, m in named.items():
        for q, (label, unit, _) in QUANTITIES.items():
            if q not in m:
                continue
            e = m[q]
            n = str(e.get("n", ""))
            if e.get("n_skipped"):
                n += f" ({e['n_skipped']} skipped)"
            rows.append([set_name, f"{label} ({e.get('unit', unit)})",
                         _fmt(e.get("mae")), _fmt(e.get("rmse")), _fmt(e.get("max")), n])
    header = ["set", "quantity", "MAE", "RMSE", "max", "N"]
    for i in range(len(rows) - 1, 0, -1):  # name each set once, on its first row
        if rows[i][0] == rows[i - 1][0]:
            rows[i][0] = ""
    if not any(r[0] for r in rows):
        header, rows = header[1:], [r[1:] for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    n_text = len(header) - 4  # left-aligned name columns; numbers right-aligned

    def line(cells):
        return "  ".join(c.ljust(w) if i < n_text else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [line(header), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    return "\n".join(out) + "\n"


def _jsonable(obj):
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_errors_json(path: str | os.PathLike, metrics: Mapping) -> Path:
    """Write metrics (one set or several named ones) as JSON; NaN/inf become null."""
    path = Path(path)
    path.write_text(json.dumps(_jsonable(metrics), indent=2, ensure_ascii=False) + "\n")
    return path


def _min_distance_one(atoms: Atoms, start: float = 2.0) -> float:
    if len(atoms) == 0 or (len(atoms) == 1 and not atoms.pbc.any()):
        return math.inf
    # beyond this cutoff every pair (including an atom and its own periodic image) is seen
    lengths = atoms.cell.lengths()
    bound = float(np.linalg.norm(np.ptp(atoms.positions, axis=0))
                  + lengths[atoms.pbc].sum()) + 1.0
    cutoff = start
    while True:
        d = neighbor_list("d", atoms, cutoff)
        if d.size:
            return float(d.min())
        if cutoff > bound:
            return math.inf
        cutoff *= 2.0


def min_distance(images: Atoms | Sequence[Atoms]) -> tuple[float, int]:
    """Smallest interatomic distance over a dataset, periodic images included.

    Returns ``(distance, index of the configuration)``; ``(inf, -1)`` when no
    configuration has a pair.
    """
    if isinstance(images, Atoms):
        images = [images]
    best, where = math.inf, -1
    for i, atoms in enumerate(images):
        d = _min_distance_one(atoms)
        if d < best:
            best, where = d, i
    return best, where
