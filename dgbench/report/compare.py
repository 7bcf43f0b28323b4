"""Comparison report: several runs side by side (two commits, two machines, two decoders).

The first run is the baseline. Points are matched by (decoder, model, task, params); when two runs share
no such point (each ran a different decoder), they are matched by (task, params) alone, which is how
"decoder A's run against decoder B's run" reads. For each matched pair and metric:
- timings: the delta of medians and a two-sided Mann-Whitney U test on the raw repetitions
  (dgbench.stats.mann_whitney_u; asv's rule: a change counts only when it is significant);
- deterministic counters (NFE, tokens per forward at a fixed seed): equal or changed, no test needed;
- accuracy: McNemar's test paired on the items both runs scored (dgbench.stats.mcnemar).
"""

from __future__ import annotations

import math
from math import comb
from pathlib import Path

from dgbench.metrics import METRICS
from dgbench.report import figures_speed as fs
from dgbench.report.data import RunView, params_label, point_task, summary_of
from dgbench.report.fmt import display_unit, pct, pvalue, signed_pct, spread
from dgbench.report.html import render_run
from dgbench.report.plotting import Colors, Fig, figure, safe_name, save
from dgbench.report.site import draw, environment, manifest, section, table, write_manifest
from dgbench.stats import mann_whitney_u

ALPHA = 0.05
COMPARE_METRICS = ("committed_tok_s", "e2e_s", "ttft_s", "tpot_s", "in_step_tok_s", "nfe", "tokens_per_forward",
                   "steps_per_canvas", "acceptance_rate")


def _key(p: dict, with_decoder: bool) -> tuple:
    params = tuple(sorted((k, repr(v)) for k, v in (p.get("params") or {}).items()))
    return (p.get("decoder"), p.get("model")) + (point_task(p), params) if with_decoder else (point_task(p), params)


def match_points(views: list[RunView]) -> tuple[list[dict], str]:
    """Rows {label, points: [point or None per run]} and the matching mode ('decoder' or 'configuration')."""
    def index(view, with_decoder):
        out: dict[tuple, list[dict]] = {}
        for p in view.points:
            out.setdefault(_key(p, with_decoder), []).append(p)
        return out

    by_decoder = [index(v, True) for v in views]
    shared = set(by_decoder[0]).intersection(*[set(i) for i in by_decoder[1:]])
    mode, indexes = "decoder", by_decoder
    if not shared:
        by_config = [index(v, False) for v in views]
        if set(by_config[0]).intersection(*[set(i) for i in by_config[1:]]):
            mode, indexes = "configuration", by_config
    keys = list(dict.fromkeys(k for idx in indexes for k in idx))
    rows = []
    for k in keys:
        # A configuration key may hold several decoders in one run: those stay unmatched (ambiguous).
        pts = [idx.get(k, [None])[0] if len(idx.get(k, [])) <= 1 else None for idx in indexes]
        first = next(p for p in pts if p is not None) if any(pts) else None
        if first is None:
            continue
        label = " vs ".join(dict.fromkeys(p["decoder"] for p in pts if p)) if mode == "configuration" else first["decoder"]
        task = point_task(first)
        rows.append({"label": f"{label} {task + ' ' if task else ''}{params_label(first, skip=('task',))}".strip(),
                     "points": pts})
    return rows, mode


def min_p(n1: int, n2: int) -> float:
    """Smallest two-sided p an exact Mann-Whitney test can give: 2 / C(n1 + n2, n1)."""
    return min(1.0, 2 / comb(n1 + n2, n1)) if n1 and n2 else math.nan


def compare_metric(base: dict, other: dict, metric: str) -> dict | None:
    a, b = summary_of(base, metric), summary_of(other, metric)
    if not a or not b:
        return None
    info = METRICS.get(metric)
    higher = info.higher_is_better if info else True
    delta = (b["median"] - a["median"]) / a["median"] if a["median"] else math.nan
    raw_a = [x for x in (base.get("reps") or {}).get(metric) or (base.get("pooled") or {}).get(metric) or []
             if x is not None]
    raw_b = [x for x in (other.get("reps") or {}).get(metric) or (other.get("pooled") or {}).get(metric) or []
             if x is not None]
    if info and info.deterministic:
        p, verdict = math.nan, "equal" if a["median"] == b["median"] else "changed"
        cls = "ns" if verdict == "equal" else ("good" if (delta > 0) == higher else "worse")
    else:
        p = mann_whitney_u(raw_a, raw_b)
        floor = min_p(len(raw_a), len(raw_b))
        if not math.isnan(p) and p < ALPHA:
            better = (delta > 0) == higher
            verdict, cls = ("better" if better else "worse") + " (significant)", "good" if better else "worse"
        elif floor >= ALPHA:
            verdict, cls = f"too few repetitions to tell (smallest possible p {pvalue(floor)})", "ns"
        else:
            verdict, cls = "not significant", "ns"
    scale, unit = display_unit(info.unit if info else "")
    return {"metric": metric, "unit": unit, "base": spread(a, scale), "other": spread(b, scale),
            "n": f"{a['n']} / {b['n']}", "delta": signed_pct(delta), "p": pvalue(p), "verdict": verdict, "cls": cls,
            "delta_value": delta, "p_value": p}


def paired_items(base: dict, other: dict) -> tuple[list[bool], list[bool]]:
    """Correctness of the items both points scored, in the baseline's order."""
    a = dict(zip(base.get("item_ids") or [], base.get("correct") or []))
    b = dict(zip(other.get("item_ids") or [], other.get("correct") or []))
    common = [i for i in a if i in b]
    return [bool(a[i]) for i in common], [bool(b[i]) for i in common]


def compare_accuracy(base: dict, other: dict) -> dict | None:
    from dgbench.stats import mcnemar

    qa, qb = base.get("quality"), other.get("quality")
    if not qa or not qb:
        return None
    xa, xb = paired_items(base, other)
    row = {"base": f"{pct(qa.get('accuracy'))} [{pct(qa.get('low'))}-{pct(qa.get('high'))}] n={qa.get('n')}",
           "other": f"{pct(qb.get('accuracy'))} [{pct(qb.get('low'))}-{pct(qb.get('high'))}] n={qb.get('n')}",
           "delta": "-" if qa.get("accuracy") is None or qb.get("accuracy") is None
           else f"{100 * (qb['accuracy'] - qa['accuracy']):+.1f} points", "paired": str(len(xa))}
    if not xa:
        return {**row, "p": "-", "verdict": "no item scored by both: no paired test", "cls": "ns"}
    t = mcnemar(xa, xb)
    significant = t["p_value"] < ALPHA
    better = t["b01"] > t["b10"]
    return {**row, "p": f"{pvalue(t['p_value'])} (McNemar {t['method']}, b01={t['b01']}, b10={t['b10']})",
            "verdict": ("better" if better else "worse") + " (significant)" if significant else "not significant",
            "cls": ("good" if better else "worse") if significant else "ns"}


def run_labels(views: list[RunView]) -> list[str]:
    return [f"run {i + 1}" + (" (baseline)" if i == 0 else "") for i in range(len(views))]


def throughput_figure(rows: list[dict], views: list[RunView], out: Path, colors: Colors) -> list[Fig] | str:
    shown = [r for r in rows if sum(bool(p and summary_of(p, "committed_tok_s")) for p in r["points"]) >= 2][:30]
    if not shown:
        return "No point was measured in two runs: nothing to draw side by side."
    labels = run_labels(views)
    width = 0.8 / len(views)
    with figure(9.5, 1.4 + 0.35 * len(shown) * len(views) ** 0.5) as fig:
        ax = fig.add_subplot()
        for j, label in enumerate(labels):
            ys, meds, lo, hi = [], [], [], []
            for i, r in enumerate(shown):
                s = summary_of(r["points"][j], "committed_tok_s") if r["points"][j] else None
                if s:
                    ys.append(i + j * width)
                    meds.append(s["median"])
                    lo.append(s["median"] - s["p10"])
                    hi.append(s["p90"] - s["median"])
            ax.barh(ys, meds, height=width, xerr=[lo, hi], capsize=2, color=colors.color(label),
                    label=f"{label}: {views[j].name}")
        ax.set_yticks([i + width * (len(views) - 1) / 2 for i in range(len(shown))], [r["label"] for r in shown],
                      fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("committed throughput (tok/s), median with p10-p90")
        ax.legend(fontsize=7)
    return [save(fig, out, "compare-throughput", "Committed throughput, run by run",
                 "Each group is one matched point; bars are medians over the timed repetitions with p10-p90.",
                 " vs ".join(f"{lab}: {v.machine}, commit {v.commit or '?'}" for lab, v in zip(labels, views)))]


NOT_GATED = "not gated"


def gate_verdicts(rows: list[dict], views: list[RunView], j: int) -> dict[tuple[int, str], str]:
    """(row index, metric) -> verdict of `dgbench gate`'s rules (dgbench.gate.rules, thresholds from run j's
    suite, as the gate takes them from the candidate's) for run j against run 1. The whole run pair is one
    family, as in `dgbench gate` (Holm over all its timing comparisons): the page shows the gate's
    verdicts, not verdicts of its own."""
    from dgbench.errors import ResultsError
    from dgbench.gate.rules import apply_family, compare_points, gate_rules

    rules, alpha, _ = gate_rules(views[j].meta.get("suite") or {})
    owned = []
    for i, r in enumerate(rows):
        base, other = r["points"][0], r["points"][j]
        if base is None or other is None or base.get("status") != "ok" or other.get("status") != "ok":
            continue
        try:
            owned += [(i, c) for c in compare_points(base, other, rules, alpha)]
        except ResultsError:   # e.g. accuracy with no item scored by both: the gate refuses to compare
            continue
    apply_family([c for _, c in owned], alpha)
    return {(i, c.metric): c.verdict for i, c in owned}


def deltas(views: list[RunView], rows: list[dict]) -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
    """Table rows: timing/counter deltas, paired accuracy deltas, and points missing from some run."""
    labels = run_labels(views)
    delta_rows, acc_rows, unmatched = [], [], []
    verdicts = {j: gate_verdicts(rows, views, j) for j in range(1, len(views))}
    for i, r in enumerate(rows):
        base = r["points"][0]
        for j in range(1, len(views)):
            other = r["points"][j]
            if base is None or other is None or base.get("status") != "ok" or other.get("status") != "ok":
                continue
            gate = verdicts[j]
            for metric in COMPARE_METRICS:
                c = compare_metric(base, other, metric)
                if c:
                    delta_rows.append([r["label"], f"{labels[j]} vs run 1", f"{metric} ({c['unit']})", c["base"],
                                       c["other"], c["n"], c["delta"], c["p"], c["verdict"],
                                       gate.get((i, metric), NOT_GATED)])
            acc = compare_accuracy(base, other)
            if acc:
                acc_rows.append([r["label"], f"{labels[j]} vs run 1", acc["base"], acc["other"], acc["delta"],
                                 acc["paired"], acc["p"], acc["verdict"], gate.get((i, "accuracy"), NOT_GATED)])
        missing = [labels[j] for j, p in enumerate(r["points"]) if p is None or p.get("status") != "ok"]
        if missing:
            unmatched.append([r["label"], ", ".join(missing)])
    return delta_rows, acc_rows, unmatched


def knob_differences(views: list[RunView]) -> list[str]:
    """Same decoder name, different settings: say so, since the rows compare them as one decoder."""
    def knobs(view):
        return {d.get("name"): (d.get("model"), d.get("engine"), d.get("knobs") or {})
                for d in (view.meta.get("suite") or {}).get("decoders", [])}
    base = knobs(views[0])
    out = []
    for j, view in enumerate(views[1:], 2):
        for name, (model, engine, kn) in knobs(view).items():
            if name in base and base[name] != (model, engine, kn):
                bm, be, bk = base[name]
                diff = [f"{k}: {bk.get(k)} -> {kn.get(k)}" for k in sorted(set(bk) | set(kn)) if bk.get(k) != kn.get(k)]
                diff += [f"model {bm} -> {model}"] * (bm != model) + [f"engine {be} -> {engine}"] * (be != engine)
                out.append(f"Decoder {name} differs in run {j}: {'; '.join(diff)}.")
    return out


def render_comparison(views: list[RunView], out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    labels = run_labels(views)
    links = []
    for i, view in enumerate(views):
        sub = f"runs/{i + 1}-{safe_name(view.name)}"
        render_run(view, out / sub, up={"href": "../../index.html", "text": "back to the comparison"})
        links.append(f"{sub}/index.html")
    rows, mode = match_points(views)
    colors = Colors(labels)

    side = [["report", *[{"href": link, "text": f"{lab}: full report"} for lab, link in zip(labels, links)]],
            ["run directory", *[v.name for v in views]], ["suite", *[v.suite_name for v in views]],
            ["machine", *[v.machine for v in views]], ["commit", *[str(v.meta.get("git_commit", "?")) for v in views]],
            ["started (UTC)", *[v.created for v in views]], ["status", *[str(v.meta.get("status")) for v in views]],
            ["points measured / failed", *[f"{len(v.ok)} / {len(v.failed)}" for v in views]],
            ["versions", *[", ".join(f"{k} {x}" for k, x in (v.meta.get("versions") or {}).items()) for v in views]]]
    reasons = []
    if len({v.machine for v in views}) > 1:
        reasons.append("The runs come from different machines: every delta below includes the hardware difference.")
    if mode == "configuration":
        reasons.append("The runs share no decoder: points are matched by task and sweep parameters, so each row "
                       "compares one run's decoder with the other's.")
    delta_rows, acc_rows, unmatched = deltas(views, rows)
    reasons += knob_differences(views)
    sections = [section("runs", "Runs side by side", tables=[table(["", *labels], side, cls="meta")], reasons=reasons,
                        intro="The first run is the baseline; each run's full report is linked in the first row.")]
    sections.append(section(
        "deltas", "Deltas and their significance", tables=[table(
            ["point", "runs", "metric (unit)", "run 1 median [p10-p90]", "other median [p10-p90]", "n", "delta",
             "p (Mann-Whitney)", "significance", "gate verdict"], delta_rows, numeric=(5, 6, 7))] if delta_rows else [],
        intro=(f"Delta = (other - baseline) / baseline median. Timings: two-sided Mann-Whitney U test on the raw "
               f"repetitions, significant at p < {ALPHA}. Deterministic counters are compared exactly. The gate "
               "verdict is `dgbench gate`'s, by its rules (threshold and alpha from the other run's suite `gate:`); "
               "metrics the suite does not gate say so."),
        reasons=[] if delta_rows else ["No point was measured in both the baseline and another run: no delta."]))
    if acc_rows:
        sections.append(section("accuracy", "Accuracy deltas (paired)", tables=[table(
            ["point", "runs", "run 1 accuracy [95% Wilson]", "other", "delta", "items in both", "p", "significance",
             "gate verdict"],
            acc_rows)], intro="McNemar's test on the items both runs scored (discordant pairs b01, b10)."))
    sections.append(section("compare-throughput", "Throughput side by side",
                            draw(throughput_figure, rows, views, out, colors)))
    plane = {}
    for j, view in enumerate(views):
        for task, entries in fs.plane_entries(view.ok, lambda p, j=j: f"{labels[j].split(' ')[0]} {j + 1}: "
                                                                      f"{p['decoder']}").items():
            plane.setdefault(task, []).extend(entries)
    plane_colors = Colors([e["label"] for es in plane.values() for e in es])
    sections.append(section("plane", "Speed vs accuracy, all runs",
                            draw(fs.speed_accuracy, plane, out, views[0].stamp(), plane_colors, "", "compare-plane")))
    sections.append(section("unmatched", "Points not in every run", tables=[table(["point", "missing or failed in"],
                                                                                   unmatched)] if unmatched else [],
                            intro="" if unmatched else "Every point was measured in every run."))
    title = f"dgbench comparison: {' vs '.join(v.name for v in views)}"
    html = environment().get_template("run.html").render(
        title=title, subtitle=f"{len(views)} runs; baseline: run 1 ({views[0].name})", sections=sections,
        banner="", up=None)
    (out / "index.html").write_text(html, encoding="utf-8")
    data = manifest(views, "comparison", title)
    data["deltas"] = len(delta_rows)
    write_manifest(out, data)
    return data
