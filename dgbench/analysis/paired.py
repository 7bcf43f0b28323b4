"""Accuracy differences on paired items (the same items scored by two decoders).

The interval is Agresti & Min's adjusted Wald interval for a difference of paired proportions (Agresti &
Min, "Simple improved confidence intervals for comparing matched proportions", Stat. Med. 2005): add 0.5
to each cell of the 2x2 agreement table, then d = (b10 - b01) / n and
se = sqrt(b01 + b10 - (b10 - b01)^2 / n) / n. Unlike the plain Wald interval it does not collapse to
[0, 0] when the two decoders agree on every item, which is common on small quality runs.
"""

from __future__ import annotations

import math
from statistics import NormalDist


def paired_items(a: dict, b: dict) -> tuple[list[bool], list[bool]]:
    """Correctness of the items both points scored, in a's item order (points may hold different items)."""
    ids_a, ids_b = a.get("item_ids") or [], b.get("item_ids") or []
    ca, cb = a.get("correct") or [], b.get("correct") or []
    if len(ids_a) != len(ca) or len(ids_b) != len(cb):
        return [], []
    where = {i: k for k, i in enumerate(ids_b)}
    xs, ys = [], []
    for k, item in enumerate(ids_a):
        if item in where:
            xs.append(bool(ca[k]))
            ys.append(bool(cb[where[item]]))
    return xs, ys


def paired_difference(candidate: list[bool], reference: list[bool], level: float = 0.95) -> dict:
    """acc(candidate) - acc(reference) on paired items with its adjusted-Wald interval (fractions)."""
    n = len(candidate)
    if n == 0 or n != len(reference):
        return {"n": 0, "diff": math.nan, "low": math.nan, "high": math.nan, "b01": 0, "b10": 0}
    b10 = sum(c and not r for c, r in zip(candidate, reference))   # candidate right, reference wrong
    b01 = sum(r and not c for c, r in zip(candidate, reference))   # reference right, candidate wrong
    z = NormalDist().inv_cdf(0.5 + level / 2)
    n_adj = n + 2.0
    b10a, b01a = b10 + 0.5, b01 + 0.5
    d_adj = (b10a - b01a) / n_adj
    var = max(b10a + b01a - (b10a - b01a) ** 2 / n_adj, 0.0)
    se = math.sqrt(var) / n_adj
    return {"n": n, "diff": (b10 - b01) / n, "low": max(-1.0, d_adj - z * se), "high": min(1.0, d_adj + z * se),
            "b01": b01, "b10": b10, "level": level,
            "candidate_accuracy": sum(candidate) / n, "reference_accuracy": sum(reference) / n}
