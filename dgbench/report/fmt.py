"""Number formatting shared by the console table, the HTML report and the markdown summary.

Measurements are stored raw (seconds, bytes, tok/s); only this module decides how they read.
"""

from __future__ import annotations

import math

# Metrics stored in seconds read better in milliseconds; bytes in MiB. (scale, display unit)
DISPLAY = {"s": (1e3, "ms"), "B": (1 / 2**20, "MiB"), "fraction": (100.0, "%")}


def is_missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def num(x, scale: float = 1.0, digits: int = 3) -> str:
    """Three significant digits, no exponent for values >= 100 (a throughput of 1234.5 reads 1234)."""
    if is_missing(x):
        return "-"
    v = x * scale
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.{digits}g}"


def spread(summary: dict | None, scale: float = 1.0) -> str:
    """'median [p10-p90]', or just the value when every repetition agreed."""
    if not summary or summary.get("n", 0) == 0:
        return "-"
    med, lo, hi = (num(summary[k], scale) for k in ("median", "p10", "p90"))
    return med if lo == hi == med else f"{med} [{lo}-{hi}]"


def display_unit(unit: str) -> tuple[float, str]:
    """(scale, unit) to show a stored unit in: seconds as ms, bytes as MiB, fractions as %."""
    return DISPLAY.get(unit, (1.0, unit))


def pct(x) -> str:
    return "-" if is_missing(x) else f"{100 * x:.1f}%"


def signed_pct(x) -> str:
    return "-" if is_missing(x) else f"{100 * x:+.1f}%"


def pvalue(p) -> str:
    if is_missing(p):
        return "-"
    return "<0.001" if p < 1e-3 else f"{p:.3g}"
