"""Serve-scenario figure: aggregate vs per-user throughput over the concurrency sweep, one line per endpoint.

Aggregate output tok/s is one value per point (one load run); per-user tok/s is the median over the point's
requests with p10-p90 bars. The crossover under load (dgbench/report/serve.py) is named in the caption.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.ticker import NullFormatter

from dgbench.report.data import RunView
from dgbench.report.plotting import Colors, Fig, errorbar, figure, save
from dgbench.report.serve import crossover_lines


def serve_points(view: RunView) -> list[dict]:
    return [p for p in view.ok if p.get("serve") and isinstance(p.get("params", {}).get("concurrency"), int)]


def per_user_vs_aggregate(view: RunView, out: Path, colors: Colors) -> list[Fig] | str:
    points = serve_points(view)
    if not points:
        return "No measured serve point with a numeric concurrency: no throughput-under-load figure."
    with figure(9.5, 3.8) as fig:
        ax_agg, ax_user = fig.subplots(1, 2)
        for name in dict.fromkeys(p["decoder"] for p in points):
            for rate in dict.fromkeys(p["params"].get("request_rate") for p in points if p["decoder"] == name):
                mine = sorted((p for p in points if p["decoder"] == name and p["params"].get("request_rate") == rate),
                              key=lambda p: p["params"]["concurrency"])
                label = f"{name} ({mine[0].get('paradigm', '?')})" + (f", rate {rate}" if rate != "inf" else "")
                xs = [p["params"]["concurrency"] for p in mine]
                ax_agg.plot(xs, [p["serve"]["output_tok_s"] for p in mine], color=colors.color(name),
                            marker=colors.marker(name), label=label)
                users = [(p["params"]["concurrency"], p["summary"]["per_user_tok_s"]) for p in mine
                         if (p.get("summary") or {}).get("per_user_tok_s", {}).get("n")]
                if users:
                    errorbar(ax_user, [u[0] for u in users], [u[1] for u in users], 1.0, colors.color(name),
                             colors.marker(name), label)
        for ax, ylabel in ((ax_agg, "aggregate output tok/s"), (ax_user, "per-user tok/s (median, p10-p90)")):
            ax.set_xscale("log", base=2)
            ticks = sorted({p["params"]["concurrency"] for p in points})
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("concurrency (requests in flight)")
            ax.set_ylabel(ylabel)
            ax.legend(fontsize=7)
    cross = " ".join(crossover_lines(view.ok)) or "No diffusion/AR endpoint pair measured at two shared concurrencies."
    return [save(fig, out, "serve-throughput-under-load", "Throughput under load: aggregate vs per user",
                 "Left: output tokens of successful requests / point duration. Right: one request's tokens / its "
                 f"end-to-end time, median with p10-p90 over the point's requests. {cross}", view.stamp())]
