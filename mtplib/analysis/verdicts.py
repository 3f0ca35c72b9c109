"""Pass/fail verdicts of a validation: values and tolerances in, one row per phase (or MD
scenario) and quantity out.

Every row is a dict ``{phase, quantity, value, reference, tolerance, unit, pass}`` (``value``
and ``reference`` may be None when a computation failed: such a row fails, with the reason in
``tolerance``'s place under ``note``).  :func:`format_verdicts` renders the rows as a text table.
Pure functions: no files, no calculators.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["elastic_verdict", "limit_verdict", "failed_verdict", "format_verdicts",
           "count_failures"]

def _row(phase, quantity, value, reference, tolerance, unit, passed, note=""):
    return {"phase": str(phase), "quantity": quantity,
            "value": None if value is None else float(value),
            "reference": None if reference is None else float(reference),
            "tolerance": tolerance, "unit": unit, "pass": bool(passed), "note": note}


def elastic_verdict(phase: str, c_mtp, c_reference, relative: float, absolute_gpa: float) -> dict:
    """One row for a phase's elastic constants: every component C_ij (6x6 Voigt, GPa) must
    lie within ``relative`` of the reference's or within ``absolute_gpa`` GPa; the row shows
    the worst component (largest |difference| / allowed difference)."""
    c_mtp, c_ref = np.asarray(c_mtp, float), np.asarray(c_reference, float)
    allowed = np.maximum(relative * np.abs(c_ref), absolute_gpa)
    ratio = np.abs(c_mtp - c_ref) / allowed
    upper = np.triu(np.ones((6, 6), bool))
    if not np.all(np.isfinite(ratio[upper])):
        return failed_verdict(phase, "elastic C_ij", "not finite")
    ratio = np.where(upper, ratio, -1.0)
    i, j = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    name = f"C{i + 1}{j + 1}"
    return _row(phase, f"elastic {name} (worst C_ij)", c_mtp[i, j], c_ref[i, j],
                f"±{100 * relative:g} % or ±{absolute_gpa:g} GPa", "GPa", ratio[i, j] <= 1.0)


def limit_verdict(phase: str, quantity: str, value, limit: float, unit: str,
                  reference=None, tolerance: str | None = None) -> dict:
    """One row: pass when ``value <= limit`` (a missing or non-finite value fails)."""
    ok = value is not None and math.isfinite(float(value)) and float(value) <= limit
    return _row(phase, quantity, value, reference, tolerance or f"≤ {limit:.4g} {unit}", unit,
                ok)


def failed_verdict(phase: str, quantity: str, reason: str) -> dict:
    """A row for a quantity that could not be computed: it fails, with the reason."""
    return _row(phase, quantity, None, None, "-", "", False, note=reason)


def count_failures(rows: Sequence[Mapping]) -> int:
    return sum(1 for r in rows if not r["pass"])


def _number(v) -> str:
    return "-" if v is None else f"{v:.4g}"


def format_verdicts(rows: Sequence[Mapping]) -> str:
    """The rows as an aligned text table with a closing line (how many pass, which fail)."""
    head = ["phase", "quantity", "value", "reference", "tolerance", "verdict"]
    body = [[r["phase"], r["quantity"],
             f"{_number(r['value'])} {r['unit']}".strip() if r["value"] is not None else "-",
             f"{_number(r['reference'])} {r['unit']}".strip() if r["reference"] is not None
             else "-",
             r["tolerance"], ("PASS" if r["pass"] else "FAIL")
             + (f" ({r['note']})" if r.get("note") else "")] for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip()
             for line in [head, ["-" * w for w in widths], *body]]
    n_fail = count_failures(rows)
    if not rows:
        lines.append("no validation quantity was computed")
    elif n_fail:
        failed = ", ".join(f"{r['phase']} {r['quantity']}" for r in rows if not r["pass"])
        lines.append(f"{len(rows) - n_fail} of {len(rows)} verdicts pass; FAILED: {failed}")
    else:
        lines.append(f"all {len(rows)} verdicts pass")
    return "\n".join(lines) + "\n"
