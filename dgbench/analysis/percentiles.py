"""p50 / p90 / p99 of a point's metric with n, from its raw values (older runs stored only p10/p90).

Linear interpolation (numpy's default, dgbench.stats.percentile). With n < 100 values p99 falls between the
two largest, so it is in effect the maximum: every table that prints p99 marks it then.
"""

from __future__ import annotations

import math

from dgbench.stats import percentile

P99_MIN_N = 100


def p99_is_max(n: int) -> bool:
    return 0 < n < P99_MIN_N


def raw_values(point: dict, metric: str) -> list[float]:
    values = (point.get("reps") or {}).get(metric) or (point.get("pooled") or {}).get(metric) or []
    return [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]


def tail(point: dict, metric: str) -> dict | None:
    """{n, p10, p50, p90, p99, max, p99_is_max} from the raw values, else from the stored summary."""
    xs = raw_values(point, metric)
    if xs:
        return {"n": len(xs), "p10": percentile(xs, 10), "p50": percentile(xs, 50), "p90": percentile(xs, 90),
                "p99": percentile(xs, 99), "max": max(xs), "p99_is_max": p99_is_max(len(xs))}
    s = (point.get("summary") or {}).get(metric)
    if not s or not s.get("n"):
        return None
    return {"n": s["n"], "p10": s.get("p10"), "p50": s.get("p50", s.get("median")), "p90": s.get("p90"),
            "p99": s.get("p99", math.nan), "max": math.nan, "p99_is_max": p99_is_max(int(s["n"]))}


NOTE = (f"p50/p90/p99 by linear interpolation over n values; p99* marks n < {P99_MIN_N}, where p99 lies between "
        "the two largest values and is in effect the maximum.")
