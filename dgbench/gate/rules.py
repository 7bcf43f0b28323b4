"""Regression decisions: a candidate run against a baseline run, metric by metric, point by point.

The rule is asv's (airspeed velocity, `asv compare`): a timing change counts only when it is beyond the
threshold AND statistically significant over the raw repetitions, so a noisy CI machine does not cry
wolf and a real 10% slowdown is not waved through. Per metric the direction comes from dgbench.metrics;
deterministic counters (NFE, tokens per forward, useful tokens at a fixed seed) have no noise and are
compared exactly; accuracy is compared item by item on the same items (exact McNemar), and exactly for
a greedy (deterministic) decoder.

Reads results files only and imports no torch: a CI job gates without installing it.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dgbench.errors import ResultsError
from dgbench.metrics import METRICS
from dgbench.results import RunStore, fingerprint_key, point_fingerprint_key
from dgbench.stats import bootstrap_ratio_of_medians, mann_whitney_u, mcnemar_exact, median

DEFAULT_ALPHA = 0.05
DEFAULT_THRESHOLD = 0.05   # the suite schema's default for gate.threshold
# Gated when a suite's gate.metrics lists none: the user-facing speed figures of DESIGN.md.
DEFAULT_TIMING_METRICS = ("committed_tok_s", "ttft_s", "tpot_s", "cpu_s_per_tok")
# Fingerprint fields shown when two machines differ (what fingerprint_key is made of, and its context).
FINGERPRINT_FIELDS = ("device", "gpu_name", "cpu_model", "cpu_cores_logical", "gpu_count", "memory_bytes")

REGRESSION, IMPROVEMENT, OK, FAILED = "regression", "improvement", "ok", "failed"
# Neither pass nor fail: the noise lets a change of the threshold's size through undetected (MDE > threshold).
CANNOT_TELL = "cannot tell"
PAIRED_TEST = "paired t on log block ratios"


@dataclass(frozen=True)
class MetricRule:
    """How one metric is gated: its direction (from dgbench.metrics), tolerated relative and absolute change."""

    name: str
    higher_is_better: bool
    threshold: float            # relative, as a factor: max/min of the two values must exceed 1 + threshold
    absolute: float = 0.0       # and |candidate - baseline| must exceed this (in the metric's unit)
    kind: str = "timing"        # timing | exact | accuracy


@dataclass
class Comparison:
    """One metric at one sweep point: the numbers, the test and the verdict (what every output shows)."""

    point: str                  # human label: decoder and sweep params
    point_id: str
    metric: str
    unit: str
    kind: str
    baseline: float
    candidate: float
    change: float               # relative: candidate / baseline - 1 (accuracy: absolute difference)
    verdict: str
    p_value: float | None = None
    significant: bool | None = None
    test: str = ""
    n_baseline: int = 0
    n_candidate: int = 0
    interval: tuple[float, float] | None = None    # 95% interval of the change (timing)
    note: str = ""
    # Timing only; filled in over the whole family of one gate by apply_family:
    p_adjusted: float | None = None   # Holm-adjusted p over all timing comparisons of the gate
    mde: float | None = None          # minimum detectable change (relative; accuracy: points) at 80% power
    threshold: float | None = None    # the rule's relative threshold
    beyond: str = ""                  # "worse" | "better" | "": the change is beyond the threshold that way
    se: float | None = None           # standard error of the log ratio (timing), what the MDE is built on
    df: float | None = None           # its degrees of freedom
    design: str = ""                  # "paired blocks (m)" | "unpaired runs"


@dataclass
class GateResult:
    comparisons: list[Comparison]
    baseline_dir: str
    candidate_dir: str
    baseline_commit: str | None
    candidate_commit: str | None
    hardware: str
    alpha: float
    notes: list[str] = field(default_factory=list)
    family: str = ""            # how the timing comparisons' error rate is controlled (stated in every output)
    confirmation: str = ""      # what re-measuring the flagged points found (gate --measure)

    @property
    def cannot_tell(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.verdict == CANNOT_TELL]

    @property
    def regressions(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.verdict in (REGRESSION, FAILED)]

    @property
    def improvements(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.verdict == IMPROVEMENT]

    @property
    def passed(self) -> bool:
        return not self.regressions

    def to_dict(self) -> dict:
        return {"passed": self.passed, "regressions": len(self.regressions), "improvements": len(self.improvements),
                "cannot_tell": len(self.cannot_tell), "family": self.family, "confirmation": self.confirmation,
                "baseline": self.baseline_dir, "candidate": self.candidate_dir,
                "baseline_commit": self.baseline_commit, "candidate_commit": self.candidate_commit,
                "hardware": self.hardware, "alpha": self.alpha, "notes": self.notes,
                "comparisons": [asdict(c) for c in self.comparisons]}


# ---------------------------------------------------------------- the decision rules (pure functions)

def _worse_and_better(rule: MetricRule, base: float, cand: float) -> tuple[bool, bool]:
    """Whether the change from base to cand is beyond both thresholds, in the worse or the better direction.

    The relative threshold is a factor between the two values, larger over smaller, as asv compares
    times: 0.10 flags a time 10% longer and equally a throughput 1/1.1 of the baseline's, so a metric
    and its reciprocal (e2e_s and committed_tok_s) agree, and a 3x slowdown is not capped at "-67%".
    """
    diff = cand - base
    if diff == 0 or abs(diff) <= rule.absolute:
        return False, False
    low, high = sorted((abs(base), abs(cand)))
    factor = high / low if low else math.inf
    if factor <= 1 + rule.threshold:
        return False, False
    worse = diff < 0 if rule.higher_is_better else diff > 0
    return worse, not worse


def min_attainable_p(n1: int, n2: int) -> float:
    """Smallest two-sided p-value Mann-Whitney can give for these sample sizes (all of one sample above
    the other): 2 / C(n1 + n2, n1). With 3 repetitions each it is 0.1, so nothing can be significant."""
    return min(1.0, 2 / math.comb(n1 + n2, n1))


def timing_verdict(rule: MetricRule, base: list[float], cand: list[float], alpha: float) -> tuple[str, float, float]:
    """(verdict, relative change of the medians, Mann-Whitney p) for raw repetitions of a noisy metric."""
    bm, cm = median(base), median(cand)
    change = cm / bm - 1 if bm else math.nan
    worse, better = _worse_and_better(rule, bm, cm)
    if len(base) < 2 or len(cand) < 2:
        p = math.nan  # one value a side: no test is possible; the threshold alone decides
        significant = True
    else:
        p = mann_whitney_u(base, cand)
        significant = p < alpha
    if worse and significant:
        return REGRESSION, change, p
    if better and significant:
        return IMPROVEMENT, change, p
    return OK, change, p


def exact_verdict(rule: MetricRule, base: float, cand: float) -> tuple[str, float]:
    """Deterministic counters: no noise, so any change beyond the (default zero) threshold is real."""
    change = cand / base - 1 if base else (0.0 if cand == base else math.inf)
    worse, better = _worse_and_better(rule, base, cand)
    return (REGRESSION if worse else IMPROVEMENT if better else OK), change


def accuracy_verdict(rule: MetricRule, base_correct: list[bool], cand_correct: list[bool], alpha: float,
                     deterministic: bool) -> tuple[str, float, float, int, int]:
    """Paired accuracy on the same items: (verdict, change in accuracy, exact McNemar p, b01, b10).

    b10 counts items the baseline got right and the candidate wrong. A sampling decoder's drop must be
    significant; a greedy decoder's outputs carry no sampling noise, so its accuracy is compared exactly.
    """
    n = len(base_correct)
    b01 = sum(1 for a, b in zip(base_correct, cand_correct) if not a and b)
    b10 = sum(1 for a, b in zip(base_correct, cand_correct) if a and not b)
    base_acc = sum(base_correct) / n
    cand_acc = sum(cand_correct) / n
    p = mcnemar_exact(b01, b10)
    worse, better = _worse_and_better(rule, base_acc, cand_acc)
    significant = deterministic or p < alpha
    verdict = REGRESSION if worse and significant else IMPROVEMENT if better and significant else OK
    return verdict, cand_acc - base_acc, p, b01, b10


def timing_comparison(rule: MetricRule, base: list[float], cand: list[float], blocks, alpha: float,
                      seed: int) -> Comparison:
    """One timing metric of one point, before the family decides its verdict (apply_family).

    Paired (both sides measured interleaved, block by block, by `dgbench gate --measure`): the change is
    the geometric mean of the block-median ratios, its p from a t-test of their logs across blocks.
    Unpaired (two separate runs): the change of the medians and Mann-Whitney U over the repetitions."""
    from dgbench.gate.family import one_sample_t, paired_log_ratios, paired_se, unpaired_se

    bm, cm = median(base), median(cand)
    groups = blocks[2] if blocks is not None and len(blocks) > 2 else None
    if blocks is not None and len(blocks[0]) >= 2:
        from dgbench.gate.family import process_means

        logs = process_means(paired_log_ratios(blocks[0], blocks[1]), groups)
    else:
        logs = None
    if logs is not None and len(logs) >= 2:
        mean, sd, p = one_sample_t(logs)
        se, df = paired_se(logs)
        ratio = math.exp(mean)
        from dgbench.gate.family import t_quantile

        half = t_quantile(0.975, df) * se
        interval = (math.exp(mean - half) - 1, math.exp(mean + half) - 1)
        pairs = len(set(groups)) if groups and len(set(groups)) >= 2 else 0
        test = PAIRED_TEST
        design = (f"paired processes ({pairs} pairs x {len(blocks[0]) // pairs} blocks)" if pairs
                  else f"paired blocks ({len(logs)})")
        note = ""
    else:
        ratio = cm / bm if bm else math.nan
        if len(base) < 2 or len(cand) < 2:
            p, se, df = math.nan, math.nan, 0
            test = "threshold only (n=1)"
        else:
            p = mann_whitney_u(base, cand)
            se, df = unpaired_se(base, cand)
            test = "Mann-Whitney U"
        _, low, high = bootstrap_ratio_of_medians(base, cand, seed=seed)
        interval, design = (low - 1, high - 1), "unpaired runs"
        small = len(base) > 1 and len(cand) > 1 and min_attainable_p(len(base), len(cand)) >= alpha
        note = (f"{len(base)} vs {len(cand)} repetitions cannot reach p<{alpha}; raise measure.min_repetitions"
                if small else "")
        if small:
            se = math.inf
    worse, better = _worse_and_better(rule, 1.0, ratio) if not math.isnan(ratio) else (False, False)
    return Comparison("", "", rule.name, "", "timing", bm, cm, ratio - 1, OK,
                      p_value=None if math.isnan(p) else p, test=test, n_baseline=len(base),
                      n_candidate=len(cand), interval=interval, note=note, threshold=rule.threshold,
                      beyond="worse" if worse else "better" if better else "", se=se, df=df, design=design)


def apply_family(comparisons: list[Comparison], alpha: float) -> list[Comparison]:
    """Timing verdicts over the whole family of one gate: Holm-adjusted p < alpha and beyond the threshold
    is a regression (or an improvement); otherwise "cannot tell" when the minimum detectable change at the
    family's strictest level (alpha / K, Holm's first step) is above the threshold, else ok.
    Idempotent: it recomputes from the raw p-values, so a gate over more points can re-apply it."""
    from dgbench.gate.family import holm_adjust, mde_from_se

    timing = [c for c in comparisons if c.kind == "timing"]
    raw = [math.nan if c.p_value is None else c.p_value for c in timing]
    adjusted = holm_adjust(raw)
    k = max(1, sum(not math.isnan(p) for p in raw))
    for c, adj in zip(timing, adjusted):
        c.p_adjusted = None if math.isnan(adj) else adj
        c.significant = True if math.isnan(adj) else adj < alpha   # n=1: the threshold alone decides
        c.mde = mde_from_se(c.se, c.df, alpha / k) if c.se is not None else math.inf
        if c.beyond == "worse" and c.significant:
            c.verdict = REGRESSION
        elif c.beyond == "better" and c.significant:
            c.verdict = IMPROVEMENT
        elif c.p_value is not None and c.threshold is not None and c.mde > c.threshold:
            c.verdict = CANNOT_TELL
        else:
            c.verdict = OK
    return comparisons


def family_statement(comparisons: list[Comparison], alpha: float) -> str:
    k = sum(1 for c in comparisons if c.kind == "timing" and c.p_value is not None)
    from dgbench.gate.family import FAMILY_METHOD, MDE_POWER

    return (f"{FAMILY_METHOD} over {k} timing comparison(s): family-wise false-alarm rate <= {alpha}; "
            f"MDE = smallest change detected with {MDE_POWER:.0%} power at alpha/{k}")


def accuracy_mde(n: int, alpha: float) -> float:
    """The smallest accuracy drop (a fraction) exact McNemar can call significant on n paired items: every
    discordant item right->wrong and none the other way gives p = 2 * 0.5^d, so d must exceed log2(2/alpha)."""
    d = 1
    while 2 * 0.5 ** d >= alpha:
        d += 1
    return d / n if n else math.inf


def accuracy_power_note(n: int, alpha: float, deterministic: bool) -> str:
    if deterministic or not n:
        return ""
    return (f"{n} items: a drop under {100 * accuracy_mde(n, alpha):.0f} pts cannot be significant "
            f"(needs >= {round(accuracy_mde(n, alpha) * n)} items right→wrong, none back)")


def _paired_blocks(base: dict, cand: dict, metric: str, n_base: int, n_cand: int):
    """(baseline, candidate) block sizes of a metric when both sides were measured interleaved in one gate
    (same interleave id, as many blocks each, sizes adding up to the repetitions); else None (unpaired)."""
    if not base.get("interleave_id") or base.get("interleave_id") != cand.get("interleave_id"):
        return None
    bb = (base.get("rep_blocks") or {}).get(metric) if isinstance(base.get("rep_blocks"), dict) else None
    cb = (cand.get("rep_blocks") or {}).get(metric) if isinstance(cand.get("rep_blocks"), dict) else None
    if not bb or not cb or len(bb) != len(cb) or sum(bb) != len((base.get("reps") or {}).get(metric) or []) \
            or sum(cb) != len((cand.get("reps") or {}).get(metric) or []):
        return None
    from dgbench.gate.family import split_blocks

    def clean(block):
        return [float(v) for v in block if v is not None and not (isinstance(v, float) and math.isnan(v))]

    groups = base.get("block_process") if base.get("block_process") == cand.get("block_process") else None
    return ([clean(x) for x in split_blocks(base["reps"][metric], bb)],
            [clean(x) for x in split_blocks(cand["reps"][metric], cb)],
            groups if groups and len(groups) == len(bb) else None)


# ---------------------------------------------------------------- runs, points, rules

def load_gate_run(path: Path, role: str) -> tuple[dict, list[dict]]:
    """run.json and points of a run directory, with a one-line error naming the role and the fix."""
    store = RunStore(path)
    meta = store.read_meta()
    if not store.points_file.is_file():
        raise ResultsError(f"{store.points_file}: no such file; the {role} run measured nothing "
                           "(re-run the suite, or resume it with `dgbench run --resume`)")
    points = store.read_points()
    for i, p in enumerate(points):
        if not isinstance(p, dict) or "point_id" not in p:
            raise ResultsError(f"{store.points_file}: record {i + 1} is not a dgbench point; the {role} run is "
                               "corrupted, re-run the suite")
    return meta, points


def gate_rules(suite: dict) -> tuple[dict[str, MetricRule], float, float]:
    """Per-metric rules from a suite's `gate:` section: (rules for timing metrics and overrides, alpha, threshold)."""
    gate = suite.get("gate") or {}
    threshold = gate.get("threshold", DEFAULT_THRESHOLD)
    alpha = gate.get("alpha", DEFAULT_ALPHA)
    listed = gate.get("metrics") or [{"name": m} for m in DEFAULT_TIMING_METRICS]
    rules = {}
    for m in listed:
        metric = METRICS[m["name"]]
        kind = "accuracy" if metric.name == "accuracy" else "exact" if metric.deterministic else "timing"
        default = 0.0 if kind != "timing" else threshold   # exact counters and accuracy: any change counts
        t = m.get("threshold")
        rules[metric.name] = MetricRule(metric.name, metric.higher_is_better, default if t is None else t,
                                        m.get("absolute") or 0.0, kind)
    return rules, alpha, threshold


def _rule_for(name: str, rules: dict[str, MetricRule]) -> MetricRule:
    if name in rules:
        return rules[name]
    metric = METRICS[name]
    kind = "accuracy" if name == "accuracy" else "exact"
    return MetricRule(name, metric.higher_is_better, 0.0, 0.0, kind)


def point_label(p: dict) -> str:
    params = " ".join(f"{k}={v}" for k, v in (p.get("params") or {}).items())
    return f"{p.get('decoder', '?')} {params}".strip()


def match_key(p: dict) -> str:
    """A point's configuration without its knob values: its decoder, model, engine, dtype and sweep params.

    Points are matched by point_id first; a candidate whose knobs differ (a new knob, a changed default,
    the slowing knob of the end-to-end test) is still the same row of the suite, matched by this key,
    and the knob differences are shown beside its verdicts.
    """
    key = {k: p.get(k) for k in ("decoder", "model", "engine", "dtype", "params", "task", "task_config", "limit")}
    return hashlib.sha1(repr(sorted(key.items())).encode()).hexdigest()[:12]


def knob_differences(base: dict, cand: dict) -> str:
    bk, ck = base.get("knobs") or {}, cand.get("knobs") or {}
    diffs = [f"{k}: {bk.get(k, 'unset')} → {ck.get(k, 'unset')}" for k in sorted(set(bk) | set(ck))
             if bk.get(k) != ck.get(k)]
    return "; ".join(diffs)


def check_hardware(base_meta: dict, cand_meta: dict, allow_different: bool) -> str:
    """The fingerprint both runs share, or a one-line error naming what differs."""
    bh, ch = base_meta.get("hardware") or {}, cand_meta.get("hardware") or {}
    bkey, ckey = fingerprint_key(bh), fingerprint_key(ch)
    if len(base_meta.get("hardware_keys") or []) > 1 or len(cand_meta.get("hardware_keys") or []) > 1:
        return "mixed hardware: checked point by point"   # a mixed cluster's run: see check_point_hardware
    if bkey == ckey:
        return bkey
    diffs = ", ".join(f"{f}: {bh.get(f)!r} vs {ch.get(f)!r}" for f in FINGERPRINT_FIELDS if bh.get(f) != ch.get(f))
    if not allow_different:
        raise ResultsError(f"hardware differs between baseline and candidate ({diffs}); timings from different "
                           "machines compare machines, not code: gate on the baseline's machine, save a baseline "
                           "on this one, or pass --allow-different-hardware")
    return f"{bkey} (baseline) vs {ckey} (candidate): DIFFERENT HARDWARE, allowed by --allow-different-hardware"


def check_point_hardware(pairs: list[tuple[dict, dict]], base_meta: dict, cand_meta: dict,
                         allow_different: bool) -> None:
    """Each matched pair measured on the same hardware (points of a Ray run or a merge carry their own)."""
    bh, ch = base_meta.get("hardware"), cand_meta.get("hardware")
    differ = [(b, c) for b, c in pairs if point_fingerprint_key(b, bh) != point_fingerprint_key(c, ch)]
    if differ and not allow_different:
        b, c = differ[0]
        raise ResultsError(f"{len(differ)} point(s) were measured on different hardware in baseline and candidate, "
                           f"e.g. {point_label(c)}: {point_fingerprint_key(b, bh)!r} vs {point_fingerprint_key(c, ch)!r}; "
                           "gate runs made on the same machines, or pass --allow-different-hardware")


def _is_deterministic_decoder(p: dict) -> bool:
    # Greedy AR decoding draws no random numbers; every diffusion sampler here does (seeded, but a change
    # in the number of draws reshuffles them), so only do_sample=false counts as deterministic.
    return (p.get("knobs") or {}).get("do_sample") is False


def _pair_items(base: dict, cand: dict) -> tuple[list[bool], list[bool]]:
    b = dict(zip(base.get("item_ids") or range(len(base["correct"])), base["correct"]))
    c = dict(zip(cand.get("item_ids") or range(len(cand["correct"])), cand["correct"]))
    common = [i for i in b if i in c]
    return [bool(b[i]) for i in common], [bool(c[i]) for i in common]


def _values(p: dict, metric: str) -> list[float] | None:
    reps = (p.get("reps") or {}).get(metric)
    if reps:
        return [float(v) for v in reps if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if metric == "peak_mem_bytes" and (p.get("memory") or {}).get("peak_mem_bytes") is not None:
        return [float(p["memory"]["peak_mem_bytes"])]   # one untimed call: threshold only
    return None


def compare_points(base: dict, cand: dict, rules: dict[str, MetricRule], alpha: float) -> list[Comparison]:
    """Every gated metric of one matched point."""
    label = point_label(cand)
    out: list[Comparison] = []
    knobs = knob_differences(base, cand)
    note = f"knobs differ: {knobs}" if knobs else ""
    if cand.get("status") != "ok":
        err = cand.get("error") or {}
        return [Comparison(label, cand["point_id"], "status", "", "status", math.nan, math.nan, math.nan, FAILED,
                           note=f"candidate point failed: {err.get('kind', '?')}: {err.get('message', '')}"[:300])]
    timing = [m for m, r in rules.items() if r.kind == "timing"]
    exact = sorted({m for m in (base.get("reps") or {}) if METRICS.get(m) and METRICS[m].deterministic}
                   | {m for m, r in rules.items() if r.kind == "exact"})
    seed = int(hashlib.sha1(cand["point_id"].encode()).hexdigest()[:8], 16)  # a reproducible bootstrap
    for metric in timing:
        b, c = _values(base, metric), _values(cand, metric)
        if not b or not c:
            continue
        comp = timing_comparison(rules[metric], b, c, _paired_blocks(base, cand, metric, len(b), len(c)), alpha,
                                 seed)
        comp.point, comp.point_id, comp.unit = label, cand["point_id"], METRICS[metric].unit
        comp.note = "; ".join(x for x in (note, comp.note) if x)
        out.append(comp)
    for metric in exact:
        b, c = _values(base, metric), _values(cand, metric)
        if not b or not c:
            continue
        verdict, change = exact_verdict(_rule_for(metric, rules), median(b), median(c))
        out.append(Comparison(label, cand["point_id"], metric, METRICS[metric].unit, "exact", median(b), median(c),
                              change, verdict, test="exact (deterministic counter)", n_baseline=len(b),
                              n_candidate=len(c), note=note))
    if base.get("correct") is not None and cand.get("correct") is not None:
        bc, cc = _pair_items(base, cand)
        if not bc:
            raise ResultsError(f"point {label}: baseline and candidate scored no common item; run both with the "
                               "same tasks and --limit")
        deterministic = _is_deterministic_decoder(cand)
        verdict, change, p, b01, b10 = accuracy_verdict(_rule_for("accuracy", rules), bc, cc, alpha, deterministic)
        out.append(Comparison(
            label, cand["point_id"], "accuracy", "fraction", "accuracy", sum(bc) / len(bc), sum(cc) / len(cc), change,
            verdict, p_value=p, significant=p < alpha, n_baseline=len(bc), n_candidate=len(cc),
            test="exact (greedy decoder) + McNemar" if deterministic else "exact McNemar (paired items)",
            mde=accuracy_mde(len(bc), alpha) if not deterministic else None,
            note="; ".join(x for x in (note, f"b10={b10} right→wrong, b01={b01} wrong→right",
                                       accuracy_power_note(len(bc), alpha, deterministic)) if x)))
    return apply_family(out, alpha)


def compare_runs(baseline_dir: Path, candidate_dir: Path, allow_different_hardware: bool = False) -> GateResult:
    """Gate a candidate run against a baseline run. Raises ResultsError (exit 2) for data that cannot be gated."""
    base_meta, base_points = load_gate_run(Path(baseline_dir), "baseline")
    cand_meta, cand_points = load_gate_run(Path(candidate_dir), "candidate")
    hardware = check_hardware(base_meta, cand_meta, allow_different_hardware)
    # The candidate's suite sets the rules: the change under test may tune its own gate.
    rules, alpha, _ = gate_rules(cand_meta.get("suite") or {})
    by_id = {p["point_id"]: p for p in cand_points}
    by_key: dict[str, list[dict]] = {}
    for p in cand_points:
        by_key.setdefault(match_key(p), []).append(p)
    comparisons: list[Comparison] = []
    missing, matched_ids, notes, pairs = [], set(), [], []
    for base in base_points:
        if base.get("status") != "ok":
            notes.append(f"not gated: {point_label(base)} failed in the baseline")
            continue
        cand = by_id.get(base["point_id"])
        if cand is None and len(by_key.get(match_key(base), [])) == 1:
            cand = by_key[match_key(base)][0]
        if cand is None:
            missing.append(point_label(base))
            continue
        matched_ids.add(cand["point_id"])
        pairs.append((base, cand))
    check_point_hardware(pairs, base_meta, cand_meta, allow_different_hardware)
    for base, cand in pairs:
        comparisons += compare_points(base, cand, rules, alpha)
    suites = f"baseline suite {base_meta.get('suite_name')!r}, candidate suite {cand_meta.get('suite_name')!r}"
    if not comparisons and not matched_ids:
        raise ResultsError(f"no candidate point matches a baseline point ({suites}); the configurations differ: "
                           f"run the baseline's suite and sweep, or save a new baseline")
    if missing:
        raise ResultsError(f"{len(missing)} baseline point(s) have no match in the candidate ({suites}): "
                           f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}; run the same sweep, or "
                           "save a new baseline if the suite changed on purpose")
    for p in cand_points:
        if p["point_id"] not in matched_ids:
            notes.append(f"not gated: {point_label(p)} is new (not in the baseline)")
    apply_family(comparisons, alpha)
    return GateResult(comparisons, str(baseline_dir), str(candidate_dir), base_meta.get("git_commit"),
                      cand_meta.get("git_commit"), hardware, alpha, notes, family=family_statement(comparisons, alpha))
