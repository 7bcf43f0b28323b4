"""The end-of-run summary table: one row per sweep point, units in the headers, median [p10-p90]."""

from __future__ import annotations

from rich.markup import escape

from dgbench.textsafe import markup
from rich.table import Table

from dgbench.analysis.percentiles import NOTE as PERCENTILE_NOTE
from dgbench.analysis.percentiles import tail
from dgbench.analysis.points import op_label
from dgbench.metrics import METRICS
from dgbench.report.fmt import num as _fmt
from dgbench.report.fmt import pct as _pct
from dgbench.report.fmt import spread


COLUMNS = [
    # header, metric, scale
    ("committed tok/s", "committed_tok_s", 1.0),
    ("TTFT/TTFC ms", "ttft_s", 1e3),
    ("TPOT ms (AR tok, diff canvas)", "tpot_s", 1e3),
    ("NFE passes", "nfe", 1.0),
    ("tok/forward", "tokens_per_forward", 1.0),
    ("in-step tok/s", "in_step_tok_s", 1.0),
    # Diffusion: what the adaptive stop did (a random-weight model runs every canvas to the cap); the cell
    # holds steps per canvas and, after it, the median share of canvases at the cap.
    ("steps/canvas (cap %)", "steps_per_canvas", 1.0),
    ("draft accept", "acceptance_rate", 1.0),
]


def summary_table(points: list[dict], title: str = "") -> Table:
    knob_names = sorted({k for p in points for k in p.get("params", {})
                         if k not in ("batch_size", "gen_length", "prompt_length")})
    # Metric columns that no point has (in-step throughput in an AR-only run, acceptance without
    # speculative rows) are left out rather than shown empty.
    columns = [c for c in COLUMNS if any(c[1] in p.get("summary", {}) for p in points)] or COLUMNS[:1]
    table = Table(title=markup(title), show_lines=False)
    table.add_column("decoder", no_wrap=True)
    table.add_column("model", no_wrap=True)
    table.add_column("batch", justify="right")
    table.add_column("gen tok", justify="right")
    for k in knob_names:
        table.add_column(markup(k), justify="right")
    for i, (header, _, _) in enumerate(columns):
        # The first metric column also holds a failed point's "FAILED: kind": kept on one line.
        table.add_column(header, justify="right", no_wrap=i == 0)
    table.add_column("e2e ms p50/p90/p99", justify="right")
    table.add_column("peak MiB", justify="right")
    table.add_column("n", justify="right")
    for p in points:
        params = p.get("params", {})
        row = [p["decoder"], p["model"], str(params.get("batch_size")), str(params.get("gen_length"))]
        row += [str(params.get(k, "")) for k in knob_names]
        if p.get("status") != "ok":
            err = p.get("error", {})
            row += [f"FAILED: {err.get('kind', '?')}"] + ["" for _ in columns[1:]] + ["", "", ""]
        else:
            s = p.get("summary", {})
            row += [_steps_cell(s) if metric == "steps_per_canvas" else spread(s.get(metric), scale)
                    for _, metric, scale in columns]
            row.append(tail_cell(p, "e2e_s", 1e3))
            mem = p.get("memory") or {}
            row.append(_fmt(mem.get("peak_mem_bytes"), 1 / 2**20) if mem else "-")
            row.append(str(s.get("e2e_s", {}).get("n", 0)))
        table.add_row(*[markup(c) for c in row])
    return table


def _steps_cell(summary: dict) -> str:
    steps, cap = summary.get("steps_per_canvas"), summary.get("cap_hit_share")
    if not steps or not steps.get("n"):
        return "-"
    return spread(steps) + (f" ({_pct(cap['median'])})" if cap and cap.get("n") else "")


def definitions_footer(points: list[dict]) -> str:
    used = {"committed_tok_s", "ttft_s", "tpot_s", "nfe", "tokens_per_forward", "in_step_tok_s", "peak_mem_bytes"}
    used |= {m for m in ("steps_per_canvas", "cap_hit_share") if any(m in p.get("summary", {}) for p in points)}
    if any("acceptance_rate" in p.get("summary", {}) for p in points):
        used.add("acceptance_rate")
    lines = [f"  {METRICS[m].name} ({METRICS[m].unit}): {METRICS[m].definition}" for m in sorted(used)]
    return escape("Cells are median [p10-p90] over n timed repetitions (after warmup). " + PERCENTILE_NOTE + "\n"
                  + "\n".join(lines))


def tail_cell(point: dict, metric: str, scale: float = 1.0) -> str:
    """'p50/p90/p99' with a * on p99 when n < 100 (then it is in effect the maximum)."""
    t = tail(point, metric)
    if not t:
        return "-"
    return f"{_fmt(t['p50'], scale)}/{_fmt(t['p90'], scale)}/{_fmt(t['p99'], scale)}" + ("*" if t["p99_is_max"] else "")


# ---------------------------------------------------------------- quality scenario

def quality_table(points: list[dict], title: str = "") -> Table:
    """One row per (decoder, task): accuracy with its 95% Wilson interval, and speed over the same calls."""
    table = Table(title=markup(title), show_lines=False)
    for header in ("decoder", "model", "task", "n", "accuracy [95% Wilson]", "committed tok/s", "NFE passes",
                   "tok/forward", "cap-hit %", "e2e ms", "e2e ms p50/p90/p99"):
        table.add_column(header, justify="left" if header in ("decoder", "model", "task") else "right",
                         no_wrap=header in ("decoder", "model"))
    for p in points:
        row = [op_label(p), p["model"], str(p.get("task") or p.get("params", {}).get("task", "?"))]
        if p.get("status") != "ok":
            err = p.get("error", {})
            row += ["", f"FAILED: {err.get('kind', '?')}: {err.get('message', '')}"[:80], "", "", "", "", ""]
        else:
            q = p.get("quality", {})
            s = p.get("summary", {})
            row += [str(q.get("n", 0)),
                    f"{_pct(q.get('accuracy'))} [{_pct(q.get('low'))}-{_pct(q.get('high'))}]",
                    spread(s.get("committed_tok_s")), spread(s.get("nfe")), spread(s.get("tokens_per_forward")),
                    _share(s.get("cap_hit_share")), spread(s.get("e2e_s"), 1e3), tail_cell(p, "e2e_s", 1e3)]
        table.add_row(*[markup(c) for c in row])
    return table


def _share(summary: dict | None) -> str:
    """Mean of a per-item 0/1 series (cap hit or not), as a percentage; '-' for AR rows."""
    return "-" if not summary or not summary.get("n") else _pct(summary.get("mean"))


def mcnemar_lines(points: list[dict]) -> list[str]:
    """Per task, McNemar's test for each pair of decoders scored on the same items."""
    from dgbench.stats import mcnemar

    ok = [p for p in points if p.get("status") == "ok" and p.get("correct") is not None]
    lines = []
    for task in dict.fromkeys(p.get("task") for p in ok):
        rows = [p for p in ok if p.get("task") == task]
        for i, a in enumerate(rows):
            for b in rows[i + 1:]:
                if a.get("item_ids") != b.get("item_ids"):
                    continue
                t = mcnemar(a["correct"], b["correct"])
                la, lb = op_label(a), op_label(b)
                lines.append(f"  {task}: {la} vs {lb} on {len(a['correct'])} items: "
                             f"b01={t['b01']} ({lb} right, {la} wrong), b10={t['b10']}, "
                             f"p={t['p_value']:.3g} ({t['method']})")
    return lines


def quality_footer(points: list[dict]) -> str:
    lines = ["Accuracy: share of items scored correct (sudoku solved, multiple choice letter, code infill pass@1), "
             "with its 95% Wilson interval.",
             "Speed cells are median [p10-p90] over the same generations (one call per item, batch 1, stops at EOS). "
             + PERCENTILE_NOTE,
             "Models with synthetic (random) weights score about zero: their numbers check the pipeline, not the "
             "models; the trained reference models (ref-diffusion, ref-ar, ref-diffusiongemma, ref-gemma4; cards in "
             "dgbench/_data/models) give real accuracies. cap-hit %: diffusion items whose canvas ran to the step cap."]
    tests = mcnemar_lines(points)
    if tests:
        lines += ["McNemar (paired, same items):"] + tests
    return escape("\n".join(lines))


# ---------------------------------------------------------------- the answer (dgbench.analysis)

def answer_lines(suite: dict, points: list[dict]) -> list[str]:
    """After the table: one line per diffusion/AR pair per matched point, then equal accuracy, AUP, crossover,
    seeds and batch invariance, and the definitions of what those lines print (escaped for rich)."""
    from dgbench.analysis.summary import analyze_run, lines, used_definitions

    answer = analyze_run({"suite": suite, "seed": suite.get("seed", 0)}, points)
    body = lines(answer)
    if not body:
        return [escape(answer["no_pairs"])] if answer["no_pairs"] else []
    defs = [f"  {name} ({unit}): {text}" for name, unit, text in used_definitions(answer)]
    return [escape(line) for line in body] + [escape("Definitions:\n" + "\n".join(defs))]
