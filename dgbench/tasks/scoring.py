"""Confidence intervals and paired tests for quality scores: pure Python, so gate and report can use them.

A benchmark of a few hundred multiple-choice items (GPQA diamond has 198) has wide error bars; a
reported accuracy without an interval, or a "diffusion beats AR" claim without a paired test, says
more than the data does.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from dgbench.stats import mcnemar_exact, percentile


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials.

    Chosen over the normal (Wald) interval because it stays inside [0, 1] and keeps its coverage
    near 0 and 1 and for small n (Wilson 1927; Brown, Cai & DasGupta 2001 recommend it).
    n == 0 says nothing, so the interval is the whole of [0, 1].
    """
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    z2 = z * z
    denom = 1.0 + z2 / n
    center = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    # Clamp only against float round-off at k == 0 or k == n.
    return (max(0.0, center - half), min(1.0, center + half))


def bootstrap_interval(values: Sequence[float], seed: int, n_boot: int = 2000,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of `values`, deterministic by seed.

    For scores that are not 0/1 (partial credit, per-item log-likelihood); for plain accuracy
    prefer wilson_interval, which needs no resampling.
    """
    xs = [float(v) for v in values]
    if not xs:
        raise ValueError("bootstrap_interval needs at least one value")
    rng = random.Random(seed)
    n = len(xs)
    means = [sum(rng.choices(xs, k=n)) / n for _ in range(n_boot)]
    tail = (1.0 - level) / 2 * 100
    return (percentile(means, tail), percentile(means, 100 - tail))


def mcnemar(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> dict:
    """McNemar's test for two systems scored on the same items.

    b01: items A got wrong and B got right; b10: items A got right and B got wrong. Only these
    discordant pairs carry evidence. Below 25 discordant pairs the chi-square approximation is poor,
    so the p-value is the exact binomial one (statistic = the smaller count); otherwise the
    statistic is chi-square with Edwards' continuity correction, (|b01 - b10| - 1)^2 / (b01 + b10),
    on one degree of freedom, whose survival function is erfc(sqrt(x / 2)).
    """
    if len(a_correct) != len(b_correct):
        raise ValueError(f"paired test needs equal lengths, got {len(a_correct)} and {len(b_correct)}")
    b01 = sum(1 for a, b in zip(a_correct, b_correct) if not a and b)
    b10 = sum(1 for a, b in zip(a_correct, b_correct) if a and not b)
    n = b01 + b10
    if n == 0:
        return {"b01": 0, "b10": 0, "statistic": 0.0, "p_value": 1.0, "method": "exact"}
    if n < 25:
        return {"b01": b01, "b10": b10, "statistic": float(min(b01, b10)),
                "p_value": mcnemar_exact(b01, b10), "method": "exact"}
    stat = (abs(b01 - b10) - 1) ** 2 / n
    return {"b01": b01, "b10": b10, "statistic": stat,
            "p_value": math.erfc(math.sqrt(stat / 2)), "method": "chi2_cc"}


def accuracy_summary(correct: Sequence[bool]) -> dict:
    """Accuracy with its 95% Wilson interval; an empty list gives accuracy NaN and interval [0, 1]."""
    n = len(correct)
    k = sum(1 for c in correct if c)
    low, high = wilson_interval(k, n)
    return {"n": n, "k": k, "accuracy": k / n if n else math.nan, "low": low, "high": high,
            "method": "wilson"}
