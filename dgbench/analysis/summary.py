"""Every answer of one run in one record: what the console prints after its table, what report.json holds and
what the top of the HTML report shows. One function computes it, so the three never disagree."""

from __future__ import annotations

import math

from dgbench.analysis import crossover, equal_accuracy, headline, seeds

DEFINITIONS = headline.DEFINITIONS + equal_accuracy.DEFINITIONS + crossover.DEFINITIONS + seeds.DEFINITIONS


def options_of(meta: dict) -> dict:
    """Seed and non-inferiority margin from the run's suite (`compare: {margin, margin_kind}`)."""
    suite = meta.get("suite") or {}
    compare = suite.get("compare") or {}
    return {"seed": int(meta.get("seed", suite.get("seed", 0)) or 0),
            "margin": float(compare.get("margin", equal_accuracy.DEFAULT_MARGIN
                                        if compare.get("margin_kind", "absolute") == "absolute"
                                        else equal_accuracy.MLPERF_FRACTION)),
            "margin_kind": str(compare.get("margin_kind", "absolute"))}


def analyze(points: list[dict], seed: int = 0, margin: float = equal_accuracy.DEFAULT_MARGIN,
            margin_kind: str = "absolute") -> dict:
    return {"pairs": headline.pairs(points, seed),
            "no_pairs": headline.why_no_pairs(points),
            "equal_accuracy": equal_accuracy.non_inferiority(points, margin, margin_kind),
            "aup": equal_accuracy.aup_table(points),
            "crossover": crossover.crossovers(points, seed),
            "seeds": seeds.seed_groups(points),
            "batch_invariance": seeds.invariance_rows(points)}


def analyze_run(meta: dict, points: list[dict]) -> dict:
    return analyze(points, **options_of(meta))


def lines(answer: dict) -> list[str]:
    """The plain-text lines, in the order a reader asks: speedup, equal accuracy, AUP, crossover, seeds."""
    out = [headline.pair_line(r) for r in answer["pairs"]]
    out += [equal_accuracy.non_inferiority_line(r) for r in answer["equal_accuracy"]]
    out += [equal_accuracy.aup_line(r) for r in answer["aup"]]
    out += [crossover.crossover_line(r) for r in answer["crossover"]]
    out += [seeds.seed_line(g) for g in answer["seeds"]]
    out += [seeds.invariance_line(r) for r in answer["batch_invariance"]]
    return out


def used_definitions(answer: dict) -> list[tuple[str, str, str]]:
    """The definitions of what this answer holds (a latency run has no AUP to define)."""
    used = set()
    if answer["pairs"]:
        used |= {"speedup (diffusion vs AR)", "e2e latency ratio", "TTFC/TTFT ratio"}
    if any(r.get("accuracy_diff") for r in answer["pairs"]):
        used.add("accuracy difference")
    if answer["equal_accuracy"]:
        used.add("speed at equal accuracy")
    if answer["aup"]:
        used.add("AUP (accuracy under parallelism)")
    if answer["crossover"]:
        used |= {"crossover batch", "tok/s per user"}
    if answer["seeds"]:
        used.add("between-seed spread")
    if answer["batch_invariance"]:
        used.add("batch invariance")
    return [d for d in DEFINITIONS if d[0] in used]


def _clean(x):
    """JSON-safe copy: NaN and infinities become None (report.json must load in any JSON reader)."""
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return None
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def to_json(answer: dict) -> dict:
    return _clean({**answer, "lines": lines(answer),
                   "definitions": [{"name": n, "unit": u, "definition": d} for n, u, d in DEFINITIONS]})
