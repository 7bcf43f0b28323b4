"""The report's first section: the answer (dgbench.analysis.summary) as lines, tables and two figures.

Speedup of each diffusion operating point against the fastest AR point at the same place with its 95%
bootstrap interval, speed at equal accuracy, AUP, crossover batch, seeds and batch invariance. The same
record goes into report.json (`answer`), so a published page and a script read the same numbers.
"""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.ticker import FuncFormatter, LogLocator

from dgbench.analysis.points import match_label
from dgbench.analysis.summary import analyze_run, lines, to_json, used_definitions
from dgbench.report.data import RunView
from dgbench.report.plotting import Colors, Fig, figure, save
from dgbench.report.site import draw, section, table


LINESTYLES = ["-", "--", ":", "-."]
MAX_LINES = 12   # answer lines at the top of the page; the tables hold every one


def _x(r: dict | None) -> str:
    if not r:
        return "-"
    return f"{r['ratio']:.2f}x [{r['low']:.2f}\u2013{r['high']:.2f}]"


def _pp(d: dict | None) -> str:
    if not d or not d.get("n"):
        return "-"
    return f"{100 * d['diff']:+.1f} pp [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}] (n={d['n']})"


def _num(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"


def answer_of(view: RunView) -> dict:
    """Computed once per view: the section and report.json share it."""
    cached = getattr(view, "_answer", None)
    if cached is None:
        cached = analyze_run(view.meta, view.points)
        view._answer = cached
    return cached


def answer_json(view: RunView) -> dict:
    return to_json(answer_of(view))


def answer_section(view: RunView, out: Path, colors: Colors) -> dict:
    a = answer_of(view)
    tables = []
    if a["pairs"]:
        tables.append(table(
            ["diffusion point", "AR reference (fastest AR)", "matched at", "speedup, committed tok/s [95% CI]",
             "tok/s diffusion / AR", "n reps", "e2e latency ratio", "TTFC/TTFT ratio", "accuracy diff (paired)"],
            [[r["diffusion"], r["reference"], r["match_label"], _x(r["speedup"]),
              f"{_num(r['diffusion_tok_s'])} / {_num(r['reference_tok_s'])}",
              f"{r['speedup']['n_candidate']}/{r['speedup']['n_reference']}", _x(r.get("e2e_ratio")),
              _x(r.get("ttft_ratio")), _pp(r.get("accuracy_diff"))] for r in a["pairs"]],
            caption="Diffusion vs AR: each diffusion operating point against the fastest AR point at the same batch, "
                    "prompt, generation length and task (speculative rows included)", numeric=range(3, 9)))
    for r in a["equal_accuracy"]:
        tables.append(table(
            ["diffusion point", "accuracy", "diff vs reference [95% CI]", "non-inferior", "tok/s", "speedup"],
            [[t["point"], f"{100 * t['diff']['candidate_accuracy']:.1f}%", _pp(t["diff"]),
              "yes" if t["non_inferior"] else "no", _num(t["tok_s"]), f"{t['speedup']:.2f}x"]
             for t in sorted(r["tested"], key=lambda t: -t["tok_s"])],
            caption=f"{r['task']}: speed at equal accuracy against {r['reference']} "
                    f"({100 * r['reference_accuracy']:.1f}%, {_num(r['reference_tok_s'])} tok/s); margin "
                    f"{100 * r['tolerance']:.1f} pp ({r['margin_kind']}); best: "
                    + (r["best"]["point"] if r["best"] else "none within margin"), numeric=range(1, 6)))
    if a["aup"]:
        tables.append(table(
            ["task", "decoder", "AUP", "points used", "points (mean TPF, accuracy)", "y_max %", "alpha"],
            [[r["task"], r["decoder"], _num(r["aup"]), f"{r['points_used']} of {len(r['curve'])}",
              "; ".join(f"{c['point']}: {_num(c['tpf'])}, {c['accuracy_pct']:.1f}%" for c in r["curve"]),
              f"{r['y_max']:.1f}", f"{r['alpha']:g}"] for r in a["aup"]],
            caption="AUP (hao-ai-lab): weighted area under accuracy vs mean tokens per forward; points below "
                    "y_1 - 5 pp (y_1: the lowest-TPF point's accuracy) are left out, as in their get_aup",
            numeric=(2, 5, 6)))
    if a["crossover"]:
        tables.append(table(
            ["diffusion point", "at", "swept batches", "AR/diffusion tok/s per batch", "crossover batch [95% CI]",
             "resamples crossing"],
            [[r["diffusion"], match_label(tuple(r["place"].items())),
              ", ".join(str(b) for b in r["batches"]), ", ".join(f"{x:.2f}" for x in r["ratios"]),
              (f"{r['crossover_batch']:.3g} [{_num(r['low'])}\u2013{_num(r['high'])}]"
               + ("" if r.get("direction", "ar_overtakes") == "ar_overtakes" else " (diffusion overtakes AR)")
               if r["crossover_batch"]
               else "AR ahead at every batch" if r["ar_ahead_everywhere"] else "no crossover in the swept range"),
              f"{100 * r['share_crossing']:.0f}%"] for r in a["crossover"]],
            caption="Crossover: the batch where the fastest AR point's tok/s per device overtakes the diffusion "
                    "point's", numeric=(4, 5)))
    if a["seeds"]:
        tables.append(table(
            ["operating point", "at", "seeds", "tok/s mean +- sd", "accuracy mean +- sd", "per seed"],
            [[g["point"], g["match_label"], str(g["n_seeds"]), f"{_num(g['tok_s_mean'])} +- {_num(g['tok_s_sd'])}",
              (f"{100 * g['accuracy_mean']:.1f}% +- {100 * g['accuracy_sd']:.1f} pp"
               if not math.isnan(g["accuracy_mean"]) else "-"),
              "; ".join(f"{s['seed']}: {_num(s['tok_s'])}" + (f", {100 * s['accuracy']:.1f}%" if s["accuracy"]
                                                             is not None else "") for s in g["per_seed"])]
             for g in a["seeds"]], caption="Seeds: per seed, and mean with the between-seed standard deviation"))
    if a["batch_invariance"]:
        tables.append(table(
            ["operating point", "decoder kind", "batch", "identical sequences", "positions agreeing"],
            [[r["point"], "stochastic" if r.get("stochastic") else "deterministic", str(r["batch"]),
              f"{r['identical_rows']}/{r['rows']}", f"{100 * r['token_agreement']:.1f}% of {r['positions']}"]
             for r in a["batch_invariance"]], caption="Batch invariance: batch B against each prompt alone"))
    figs = draw(per_user_figure, view, out, colors) if a["crossover"] or _has_batch_sweep(view) else []
    defined = used_definitions(a)
    if defined:
        tables.append(table(["figure", "unit", "definition"], [list(d) for d in defined],
                            caption="How these numbers are computed"))
    return section("answer", "Diffusion vs AR: the answer", figs, tables=tables,
                   reasons=[a["no_pairs"]] if a["no_pairs"] else [],
                   bullets=lines(a)[:MAX_LINES] + ([f"... {len(lines(a)) - MAX_LINES} more in the tables below"]
                                                   if len(lines(a)) > MAX_LINES else []))


def _has_batch_sweep(view: RunView) -> bool:
    return len({(p.get("params") or {}).get("batch_size") for p in view.ok}) > 1


def per_user_figure(view: RunView, out: Path, colors: Colors) -> list[Fig] | str:
    """InferenceMAX's plane: tok/s per device against tok/s per user, one line per operating point over batch."""
    from dgbench.analysis.crossover import per_user_rows

    rows = per_user_rows(view.ok)
    if not _has_batch_sweep(view):
        return "One batch size only: tok/s per device against per user needs a batch sweep (sweep.batch_size)."
    with figure(7.6, 4.8) as fig:
        ax = fig.add_subplot()
        lines_: dict[str, list[dict]] = {}
        for r in rows:
            lines_.setdefault(f"{r['label']} {match_label(r['place'])}", []).append(r)
        styles: dict[str, int] = {}
        for label, rs in lines_.items():
            rs.sort(key=lambda r: r["batch"])
            dec = rs[0]["decoder"]
            k = styles[dec] = styles.get(dec, -1) + 1   # a decoder's operating points: one colour, own dashes
            ax.plot([r["per_user"] for r in rs], [r["per_device"] for r in rs], marker=colors.marker(dec),
                    color=colors.color(dec), label=label, linewidth=1.3, linestyle=LINESTYLES[k % len(LINESTYLES)])
            for r in rs:
                ax.annotate(f"b{r['batch']}", (r["per_user"], r["per_device"]), textcoords="offset points",
                            xytext=(4, 4), fontsize=7, color=colors.color(dec))
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis in (ax.xaxis, ax.yaxis):   # mathtext is off in every figure: plain numbers, not $10^{1}$
            axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        ax.set_xlabel("tok/s per user (committed tok/s / batch), median")
        ax.set_ylabel("tok/s per device (committed), median")
        ax.set_title("Throughput per device vs per user, over batch size")
        ax.legend(fontsize=7, loc="best")
        return [save(fig, out, "per-user", "tok/s per device vs tok/s per user",
                     "Each line is one operating point over the swept batch sizes (b = batch); up is more "
                     "throughput per device, right is faster for each user. Where lines cross, the faster decoder "
                     "changes: the crossover table gives the batch with its interval.", view.stamp())]


def history_metrics(view: RunView) -> dict[str, dict]:
    """The headline numbers `dgbench publish` draws against commit and date: name -> value (+ interval, unit)."""
    from dgbench.analysis.points import match_key, median_of, op_label

    a = answer_of(view)
    out: dict[str, dict] = {}
    for r in a["pairs"]:
        s = r["speedup"]
        out[f"speedup {r['diffusion']} vs fastest AR, {r['match_label']}"] = {
            "value": s["ratio"], "low": s["low"], "high": s["high"], "unit": "x"}
    for p in view.ok:
        v = median_of(p, "committed_tok_s")
        if not p.get("quality") and not math.isnan(v):
            out[f"tok/s {op_label(p)}, {match_label(match_key(p))}"] = {"value": v, "unit": "tok/s"}
        q = p.get("quality") or {}
        if q.get("accuracy") is not None:
            out[f"accuracy {op_label(p)}, {p.get('task')}"] = {"value": 100 * q["accuracy"], "low": 100 * q["low"],
                                                               "high": 100 * q["high"], "unit": "%"}
    for r in a["aup"]:
        out[f"AUP {r['decoder']}, {r['task']}"] = {"value": r["aup"], "unit": "TPF x %"}
    return {k: {kk: (None if isinstance(vv, float) and math.isnan(vv) else vv) for kk, vv in v.items()}
            for k, v in out.items()}
