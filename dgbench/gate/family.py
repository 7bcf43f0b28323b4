"""The statistics behind a timing verdict that a noisy shared machine cannot fool: paired block ratios,
Student's t on their logarithms, Holm's step-down correction over all timing comparisons of one gate,
and the minimum detectable effect (MDE) that says when the data cannot support a verdict at all.

Paired blocks: `dgbench gate --measure` measures baseline and candidate alternately, a block of
repetitions each (A B B A A B ...), so block i of both sides ran within seconds of each other. The ratio
of the two block medians cancels whatever load the machine had in those seconds (the median inside a
block drops a single spike); what is left is tested across blocks: a one-sample t-test of the log
ratios (Student 1908; the paired design of e.g. Kalibera & Jones, "Rigorous benchmarking in reasonable
time", ISMM 2013, who also derive the number of repetitions from the observed variance, as the MDE does).

Holm (1979): with K tests at level alpha, sort the p-values, compare the i-th smallest with
alpha / (K - i + 1) and stop at the first that fails; the chance of any false alarm among the K stays
at most alpha whatever the dependence between the tests. No scipy: a CI job gates without installing it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from dgbench.stats import median

MDE_POWER = 0.80    # the detection probability the MDE is quoted at (the conventional 80%)
FAMILY_METHOD = "Holm-Bonferroni"


# ---------------------------------------------------------------- Student's t without scipy

def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (Numerical Recipes, 3rd ed., 6.4, Lentz's method)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-14:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with df degrees of freedom."""
    if math.isinf(t):
        return 0.0
    return _betainc(df / 2, 0.5, df / (df + t * t))


def t_quantile(q: float, df: float) -> float:
    """The q-quantile (0.5 < q < 1) of Student's t, by bisection on the CDF."""
    lo, hi = 0.0, 1e4
    for _ in range(64):   # 1e4 / 2^64: far below any digit that is printed
        mid = (lo + hi) / 2
        if 1 - t_two_sided_p(mid, df) / 2 < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


# ---------------------------------------------------------------- paired blocks

def split_blocks(values: Sequence[float], sizes: Sequence[int]) -> list[list[float]]:
    out, start = [], 0
    for n in sizes:
        out.append(list(values[start:start + n]))
        start += n
    return out


def paired_log_ratios(base_blocks: list[list[float]], cand_blocks: list[list[float]]) -> list[float]:
    """log(median of candidate block i / median of baseline block i), for blocks with values on both sides."""
    out = []
    for b, c in zip(base_blocks, cand_blocks):
        b, c = [v for v in b if v > 0], [v for v in c if v > 0]
        if b and c:
            out.append(math.log(median(c) / median(b)))
    return out


def process_means(logs: Sequence[float], groups: Sequence[int] | None) -> list[float]:
    """The log ratios averaged within each process pair (the unit of the test when the gate ran several):
    a pair of processes can run faster or slower than another pair for its whole life (where its memory
    landed, which core it shares), so blocks of one pair are not independent of each other; their mean is
    one observation, and the t-test across pairs counts that bias as the noise it is (a cluster mean, as
    Kalibera & Jones's multi-level design treats executions of a VM). None or one group: the blocks."""
    if not groups or len(set(groups)) < 2 or len(groups) != len(logs):
        return list(logs)
    by: dict[int, list[float]] = {}
    for g, x in zip(groups, logs):
        by.setdefault(g, []).append(x)
    return [sum(v) / len(v) for _, v in sorted(by.items())]


def one_sample_t(logs: Sequence[float]) -> tuple[float, float, float]:
    """(mean, standard deviation, two-sided p of mean == 0) of the log ratios; p is nan for fewer than 2."""
    m = len(logs)
    mean = sum(logs) / m
    if m < 2:
        return mean, math.nan, math.nan
    sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / (m - 1))
    if sd == 0:
        return mean, 0.0, 1.0 if mean == 0 else 0.0
    return mean, sd, t_two_sided_p(mean / (sd / math.sqrt(m)), m - 1)


def mde_from_se(se: float, df: float, alpha: float, power: float = MDE_POWER) -> float:
    """Smallest relative change (a factor - 1) that a two-sided t-test at level alpha detects with `power`,
    given the standard error `se` of the log ratio and df degrees of freedom: (t_{1-alpha/2} + t_power) * se."""
    if se is None or math.isnan(se) or df < 1:
        return math.inf
    return math.exp((t_quantile(1 - alpha / 2, df) + t_quantile(power, df)) * se) - 1


def paired_se(logs: Sequence[float]) -> tuple[float, int]:
    """(standard error of the mean log ratio, degrees of freedom) of m paired blocks."""
    m = len(logs)
    if m < 2:
        return math.nan, 0
    mean = sum(logs) / m
    return math.sqrt(sum((x - mean) ** 2 for x in logs) / (m - 1) / m), m - 1


def unpaired_se(base: Sequence[float], cand: Sequence[float]) -> tuple[float, int]:
    """The same for two independent samples (two separate runs): the log ratio of the medians, with each
    side's spread taken robustly (1.4826 x MAD of the logs, the SD of a normal sample), because one load
    spike would otherwise decide the figure. It ignores drift between the two runs, so the MDE built on
    it is a lower bound on what the gate can tell apart; `dgbench gate --measure` removes the drift."""
    def robust_var(values):
        logs = [math.log(v) for v in values if v > 0]
        if len(logs) < 2:
            return math.nan, len(logs)
        center = median(logs)
        return (1.4826 * median([abs(x - center) for x in logs])) ** 2, len(logs)

    (vb, nb), (vc, nc) = robust_var(base), robust_var(cand)
    if math.isnan(vb) or math.isnan(vc):
        return math.nan, 0
    # The median's variance is ~pi/2 that of the mean for normal data (asymptotic relative efficiency).
    return math.sqrt(math.pi / 2 * (vb / nb + vc / nc)), nb + nc - 2


# ---------------------------------------------------------------- family-wise error control

def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order: reject test i at family level alpha iff adjusted_i < alpha.
    nan stays nan and does not count towards the family."""
    idx = sorted((i for i, p in enumerate(p_values) if not math.isnan(p)), key=lambda i: p_values[i])
    k = len(idx)
    out = [math.nan] * len(p_values)
    running = 0.0
    for rank, i in enumerate(idx):
        running = max(running, min(1.0, (k - rank) * p_values[i]))
        out[i] = running
    return out
