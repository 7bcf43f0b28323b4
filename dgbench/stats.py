"""Statistics, pure Python so gate and report need no numpy or torch: summaries over raw repetitions,
Mann-Whitney U, bootstrap intervals, and for quality scores Wilson intervals and McNemar's paired test.

A benchmark of a few hundred multiple-choice items (GPQA diamond has 198) has wide error bars; a
reported accuracy without an interval, or a "diffusion beats AR" claim without a paired test, says
more than the data does.
"""

from __future__ import annotations

import functools
import math
import random
from collections import Counter
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default method), q in [0, 100]."""
    if not values:
        return math.nan
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summarize(values: Sequence[float]) -> dict[str, float]:
    """n, median, p10, p90, mean, std and coefficient of variation of raw values."""
    xs = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    n = len(xs)
    if n == 0:
        return {"n": 0, "median": math.nan, "p10": math.nan, "p90": math.nan,
                "mean": math.nan, "std": math.nan, "cv": math.nan}
    mean = sum(xs) / n
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else 0.0
    return {
        "n": n,
        "median": percentile(xs, 50),
        "p10": percentile(xs, 10),
        "p90": percentile(xs, 90),
        "mean": mean,
        "std": std,
        "cv": std / mean if mean else math.nan,
    }


# --- Two-sample tests for the regression gate (pure Python: the gate runs in CI without numpy) ---

# The exact null distribution is counted with an O(n1 * n2 * min(n1, n2)) recurrence; beyond this
# many pairs the normal approximation is already accurate and the exact count only costs time.
_EXACT_MAX_PAIRS = 2500


def _midranks(values: Sequence[float]) -> list[float]:
    """Ranks 1..N of `values`, tied values sharing the mean of the ranks they span."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        mid = (i + j) / 2 + 1  # ranks i+1 .. j+1 share their mean
        for k in range(i, j + 1):
            ranks[order[k]] = mid
        i = j + 1
    return ranks


@functools.lru_cache(maxsize=64)  # the gate asks for the same (n1, n2) for every point
def _u_null_counts(n1: int, n2: int) -> tuple[int, ...]:
    """Number of orderings giving each U in 0..n1*n2 when both samples come from one distribution.

    Mann & Whitney (1947), eq. (1): f(u; m, n) = f(u - n; m - 1, n) + f(u; m, n - 1), filled here
    one column at a time (counts[m][u] for the current n).
    """
    # counts[m][u] for n = 0: only U = 0 is possible.
    counts = [[1] for _ in range(n1 + 1)]
    for n in range(1, n2 + 1):
        new = [[1]]  # m = 0: a single ordering, U = 0
        for m in range(1, n1 + 1):
            size = m * n + 1
            row = [0] * size
            prev_m = new[m - 1]  # f(.; m - 1, n): the largest element is from sample 1, adds n to U
            for u, c in enumerate(prev_m):
                row[u + n] += c
            prev_n = counts[m]  # f(.; m, n - 1): the largest element is from sample 2, adds 0
            for u, c in enumerate(prev_n):
                row[u] += c
            new.append(row)
        counts = new
    return tuple(counts[n1])


def mann_whitney_u(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of the Mann-Whitney U test (Wilcoxon rank-sum) that a and b share a distribution.

    U counts the pairs (x in a, y in b) with x > y, a tie counting one half (Mann & Whitney 1947).
    Without ties and with n1 * n2 <= 2500 the p-value is exact: twice the smaller tail of U's null
    distribution, counted with Mann & Whitney's recurrence, capped at 1 (scipy's method="exact" does the
    same). Otherwise U is compared with the normal approximation, mean n1 n2 / 2 and the tie-corrected
    variance n1 n2 / 12 * ((N + 1) - sum(t^3 - t) / (N (N - 1))) (Lehmann, "Nonparametrics", 1975,
    eq. 1.62; scipy.stats.mannwhitneyu), with a 0.5 continuity correction. Either sample empty gives NaN.
    """
    xs = [float(v) for v in a]
    ys = [float(v) for v in b]
    n1, n2 = len(xs), len(ys)
    if n1 == 0 or n2 == 0:
        return math.nan
    ranks = _midranks(xs + ys)
    u1 = sum(ranks[:n1]) - n1 * (n1 + 1) / 2
    has_ties = len(set(xs + ys)) < n1 + n2
    if not has_ties and n1 * n2 <= _EXACT_MAX_PAIRS:
        counts = _u_null_counts(n1, n2)
        total = sum(counts)
        u = int(round(u1))
        lower = sum(counts[: u + 1]) / total  # P(U <= u)
        upper = sum(counts[u:]) / total  # P(U >= u)
        return min(1.0, 2 * min(lower, upper))
    n = n1 + n2
    tie_term = sum(t ** 3 - t for t in Counter(xs + ys).values())
    var = n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1)))
    if var <= 0:  # every value equal: no evidence of any difference
        return 1.0
    z = (abs(u1 - n1 * n2 / 2) - 0.5) / math.sqrt(var)
    z = max(z, 0.0)
    return min(1.0, math.erfc(z / math.sqrt(2)))  # two-sided normal tail, 2 * (1 - Phi(z))


def median(values: Sequence[float]) -> float:
    return percentile(list(values), 50)


def bootstrap_ratio_of_medians(baseline: Sequence[float], candidate: Sequence[float], seed: int,
                               n_boot: int = 2000, level: float = 0.95) -> tuple[float, float, float]:
    """Ratio median(candidate) / median(baseline) with a percentile-bootstrap interval, deterministic by seed.

    Each sample is resampled with replacement on its own (two independent groups of repetitions), the
    ratio recomputed, and the interval read off the (1 - level) / 2 tails (Efron & Tibshirani, "An
    Introduction to the Bootstrap", 1993, ch. 13). With a handful of repetitions the percentile interval
    is narrow, so the gate uses it beside Mann-Whitney, not alone. Returns (ratio, low, high); a zero
    baseline median gives NaN.
    """
    xs = [float(v) for v in baseline]
    ys = [float(v) for v in candidate]
    if not xs or not ys:
        raise ValueError("bootstrap_ratio_of_medians needs at least one value in each sample")
    base_med = median(xs)
    if base_med == 0:
        return (math.nan, math.nan, math.nan)
    rng = random.Random(seed)
    ratios = []
    for _ in range(n_boot):
        bm = median(rng.choices(xs, k=len(xs)))
        cm = median(rng.choices(ys, k=len(ys)))
        if bm != 0:
            ratios.append(cm / bm)
    tail = (1.0 - level) / 2 * 100
    return (median(ys) / base_med, percentile(ratios, tail), percentile(ratios, 100 - tail))


def mcnemar_exact(b01: int, b10: int) -> float:
    """Exact two-sided McNemar p-value from the discordant counts.

    Under the null each discordant item is equally likely to fall either way, so min(b01, b10) is
    Binomial(b01 + b10, 1/2); the p-value doubles its smaller tail, capped at 1 (McNemar 1947; the
    exact form as in statsmodels' mcnemar(exact=True)). Exact for every n: math.comb keeps it cheap.
    """
    n = b01 + b10
    if n == 0:
        return 1.0
    lo = min(b01, b10)
    tail = sum(math.comb(n, i) for i in range(lo + 1)) / 2 ** n
    return min(1.0, 2 * tail)

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
