"""Table rows for the report: every metric with its unit, n, median and spread; quality; failures; definitions.

Rows are plain strings: the template escapes every cell (results files hold model output and user-chosen
names, both untrusted).
"""

from __future__ import annotations

from dgbench.metrics import METRICS, Metric
from dgbench.report.data import RunView, params_label, point_label, point_task, summary_of
from dgbench.report.fmt import display_unit, num, pct, pvalue

# The speed columns of a run's table, in the HTML page and the markdown summary alike.
SPEED_COLUMNS = [("committed tok/s", "committed_tok_s"), ("e2e ms", "e2e_s"), ("TTFT/TTFC ms", "ttft_s"),
                 ("TPOT ms", "tpot_s"), ("NFE", "nfe"), ("tok/forward", "tokens_per_forward")]

# Quantities the results hold that dgbench.metrics does not define (pooled per-step values, telemetry and
# roofline fields). Their definitions live here because only reports print them.
EXTRA_METRICS = {m.name: m for m in [
    Metric("step_time_s", "s", False, "duration of one denoising step, pooled over every timed repetition"),
    Metric("energy_per_token_j", "J/tok", False,
           "delta of the GPU energy counter over the timed calls / useful tokens (power integration only where "
           "the counter is missing, and then said so in energy_method)"),
    Metric("mfu", "fraction", True, "model FLOP utilisation: achieved FLOP/s / peak FLOP/s of the hardware profile"),
    Metric("mbu", "fraction", True,
           "model bandwidth utilisation: achieved bytes/s / peak memory bandwidth of the hardware profile"),
    Metric("arithmetic_intensity", "FLOP/B", True, "FLOPs per call / bytes moved per call (roofline x axis)"),
]}
MAX_SAMPLES_PER_POINT = 3


def metric_info(name: str) -> Metric:
    return METRICS.get(name) or EXTRA_METRICS.get(name) or Metric(name, "", True, "(no definition recorded)")


def metric_tables(points: list[dict]) -> list[dict]:
    """One table per metric present in any point's summary, rows = points."""
    names = list(dict.fromkeys(m for p in points for m in (p.get("summary") or {})))
    if any((p.get("memory") or {}).get("peak_mem_bytes") is not None for p in points):
        names.append("peak_mem_bytes")
    names = [m for m in METRICS if m in names] + [m for m in names if m not in METRICS]
    tables = []
    for name in names:
        info = metric_info(name)
        scale, unit = display_unit(info.unit)
        rows = []
        for p in points:
            s = _summary_with_memory(p, name)
            if s:
                rows.append([p["decoder"], p.get("model", ""), params_label(p), str(s["n"]), num(s["median"], scale),
                             num(s["p10"], scale), num(s["p90"], scale), num(s.get("cv"), 100.0)])
        if rows:
            tables.append({"name": name, "unit": unit, "definition": info.definition, "rows": rows,
                           "direction": "higher is better" if info.higher_is_better else "lower is better"})
    return tables


def _summary_with_memory(p: dict, name: str) -> dict | None:
    """Peak memory comes from one extra untimed call (point["memory"]), not from the repetitions: n = 1."""
    if name == "peak_mem_bytes" and (p.get("memory") or {}).get("peak_mem_bytes") is not None:
        v = p["memory"]["peak_mem_bytes"]
        return {"n": p["memory"].get("n", 1), "median": v, "p10": v, "p90": v, "cv": None}
    return summary_of(p, name)


def definitions(points: list[dict]) -> list[dict]:
    used = {m for p in points for m in (p.get("summary") or {})} | {"peak_mem_bytes" for p in points if p.get("memory")}
    rows = list(METRICS.values()) + [m for m in EXTRA_METRICS.values() if m.name not in METRICS]
    return [{"name": m.name, "unit": m.unit, "direction": "higher" if m.higher_is_better else "lower",
             "definition": m.definition, "in_run": m.name in used} for m in rows]


def failures(view: RunView) -> list[list[str]]:
    return [[point_label(p), str((p.get("error") or {}).get("kind", "?")),
             str((p.get("error") or {}).get("message", ""))[:300]] for p in view.failed]


def quality_rows(view: RunView) -> list[list[str]]:
    rows = []
    for p in view.ok:
        q = p.get("quality")
        if q:
            rows.append([p["decoder"], p.get("model", ""), str(point_task(p)), str(q.get("n")), str(q.get("k")),
                         pct(q.get("accuracy")), f"{pct(q.get('low'))} - {pct(q.get('high'))}",
                         _spread_cell(p, "committed_tok_s"), _spread_cell(p, "nfe"),
                         _spread_cell(p, "tokens_per_forward")])
    return rows


def _spread_cell(p: dict, metric: str) -> str:
    from dgbench.report.fmt import spread

    scale, _ = display_unit(metric_info(metric).unit)
    return spread(summary_of(p, metric), scale)


def mcnemar_rows(points: list[dict], label=lambda p: p["decoder"]) -> list[list[str]]:
    """Per task, McNemar's exact/chi-square test for each pair of points scored on the same items."""
    from dgbench.stats import mcnemar

    ok = [p for p in points if p.get("status") == "ok" and p.get("correct") is not None]
    rows = []
    for task in dict.fromkeys(point_task(p) for p in ok):
        same = [p for p in ok if point_task(p) == task]
        for i, a in enumerate(same):
            for b in same[i + 1:]:
                if a.get("item_ids") != b.get("item_ids"):
                    continue
                t = mcnemar(a["correct"], b["correct"])
                rows.append([str(task), label(a), label(b), str(len(a["correct"])), str(t["b01"]), str(t["b10"]),
                             pvalue(t["p_value"]), str(t["method"])])
    return rows


def sample_rows(view: RunView) -> list[dict]:
    """A few scored samples per point: prompt tail, model output (untrusted text), answer, verdict."""
    by_point: dict[str, list[dict]] = {}
    for s in view.samples:
        by_point.setdefault(s.get("point_id"), []).append(s)
    labels = {p["point_id"]: point_label(p) for p in view.points}
    out = []
    for pid, samples in by_point.items():
        for s in samples[:MAX_SAMPLES_PER_POINT]:
            out.append({"point": labels.get(pid, f"{s.get('decoder', '?')} {s.get('task', '')}"),
                        "item": str(s.get("item_id", "")), "prompt": str(s.get("prompt", ""))[-240:],
                        "output": str(s.get("output", "")), "extracted": str(s.get("extracted")),
                        "correct": "yes" if s.get("correct") else "no"})
    return out


def sample_token_rows(view: RunView) -> list[list[str]]:
    """First generated tokens of repetition 0 per point: decoded text when the record has it, else ids."""
    rows = []
    for p in view.ok:
        text = p.get("sample_text")
        if text is None and p.get("sample_tokens"):
            text = " ".join(str(t) for t in p["sample_tokens"][:32]) + (" ..." if len(p["sample_tokens"]) > 32 else "")
            kind = "token ids"
        else:
            kind = "decoded text"
        if text is not None:
            rows.append([point_label(p), kind, str(text)])
    return rows


def telemetry_rows(view: RunView) -> list[list[str]]:
    rows = []
    for p in view.ok:
        t = p.get("telemetry")
        if isinstance(t, dict):
            power = t.get("power_w") or {}
            rows.append([point_label(p), str(t.get("source", "?")), str(t.get("n_samples", "")),
                         num(t.get("energy_j")), num(t.get("energy_per_token_j")), str(t.get("energy_method", "")),
                         num(power.get("median")) + (f" [{num(power.get('p10'))}-{num(power.get('p90'))}]"
                                                     if power.get("p10") is not None else ""),
                         "yes: " + ", ".join(t.get("throttle_reasons") or []) if t.get("throttled") else "no"])
    return rows


def roofline_rows(view: RunView) -> list[list[str]]:
    rows = []
    for p in view.ok:
        r = p.get("roofline")
        if isinstance(r, dict):
            rows.append([point_label(p), str(r.get("profile", "")), num(r.get("flops_per_call")),
                         num(r.get("bytes_per_call")), num(r.get("arithmetic_intensity")),
                         num(r.get("achieved_flop_s")), pct(r.get("mfu")), pct(r.get("mbu")),
                         num(r.get("predicted_s"), 1e3), str(r.get("bound", ""))])
    return rows


def projected_rows(view: RunView) -> list[list[str]]:
    """Projections of the points the figure shows (one per decoder): every point times every profile would
    be 14,000 rows for a 1,000-point sweep, and the per-point roofline table already holds each cost."""
    from dgbench.report.data import reference_points

    rows = []
    for p in reference_points([p for p in view.ok if isinstance(p.get("roofline"), dict)]).values():
        r = p.get("roofline")
        if isinstance(r, dict):
            measured = summary_of(p, "committed_tok_s")
            for name, proj in (r.get("projected") or {}).items():
                proj = proj or {}
                rows.append([point_label(p), name, num(proj.get("tok_s")), str(proj.get("bound") or proj.get("why", "")),
                             num(measured["median"]) if measured else "-"])
    return rows
