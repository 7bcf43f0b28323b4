"""History on the publish page: each headline metric against run date and commit, per hardware fingerprint.

Reports of one suite on one machine (the fingerprint line every report carries) form a series; a metric
present in at least two of them gets a panel: its value per run in date order, with its interval where the
report stored one, each point labelled by commit. Numbers from different machines are never joined.
Reads only report.json files (their `history_metrics`), so publishing needs neither the runs nor torch.
"""

from __future__ import annotations

import json
from pathlib import Path

from dgbench.report.plotting import figure, safe_name

MAX_PANELS = 8   # metrics per machine/suite figure; the table below it holds every one


def series(folder: Path, entries: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """(machine, suite) -> the reports with their metrics, oldest first."""
    out: dict[tuple[str, str], list[dict]] = {}
    for e in entries:
        try:
            data = json.loads((folder / e["name"] / "report.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        metrics = data.get("history_metrics")
        if data.get("kind") != "run" or not isinstance(metrics, dict) or not metrics:
            continue
        out.setdefault((e["machine"], e["suite"]), []).append(
            {"created": e["created"], "commit": e["commit"] or "?", "name": e["name"], "metrics": metrics})
    for runs in out.values():
        runs.sort(key=lambda r: (r["created"], r["name"]))
    return {k: v for k, v in out.items() if len(v) >= 2}


def tracked(runs: list[dict]) -> list[str]:
    """Metrics that at least two runs of the series hold, in first-seen order."""
    seen: dict[str, int] = {}
    for r in runs:
        for name, m in r["metrics"].items():
            if isinstance(m, dict) and isinstance(m.get("value"), (int, float)):
                seen[name] = seen.get(name, 0) + 1
    return [name for name, n in seen.items() if n >= 2]


def draw_history(folder: Path, entries: list[dict]) -> list[dict]:
    """One figure (and table) per machine and suite; returns what publish.html shows."""
    blocks = []
    for (machine, suite), runs in series(folder, entries).items():
        names = tracked(runs)
        if not names:
            continue
        fname = f"figures/history-{safe_name(suite)}-{safe_name(machine)[:30]}.png"
        shown = names[:MAX_PANELS]
        with figure(8.0, 2.1 * len(shown) + 0.6) as fig:
            axes = fig.subplots(len(shown), 1, squeeze=False)[:, 0]
            for ax, name in zip(axes, shown):
                xs, ys, lo, hi, ticks = [], [], [], [], []
                for i, r in enumerate(runs):
                    m = r["metrics"].get(name)
                    if not isinstance(m, dict) or not isinstance(m.get("value"), (int, float)):
                        continue
                    v = float(m["value"])
                    xs.append(i)
                    ys.append(v)
                    lo.append(max(0.0, v - float(m["low"])) if isinstance(m.get("low"), (int, float)) else 0.0)
                    hi.append(max(0.0, float(m["high"]) - v) if isinstance(m.get("high"), (int, float)) else 0.0)
                unit = next((r["metrics"][name].get("unit", "") for r in runs if name in r["metrics"]), "")
                ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, color="#0072B2", linewidth=1.2)
                ax.set_title(f"{name} ({unit})", fontsize=8)
                ticks = [f"{r['created'][:8]}\n{r['commit'][:8]}" for r in runs]
                ax.set_xticks(range(len(runs)))
                ax.set_xticklabels(ticks, fontsize=6.5)
            fig.suptitle(f"{suite} on {machine}", fontsize=8)
            fig.tight_layout()
            (folder / "figures").mkdir(exist_ok=True)
            fig.savefig(folder / fname, dpi=100)
        rows = [[name] + [_cell(r["metrics"].get(name)) for r in runs] for name in names]
        blocks.append({"machine": machine, "suite": suite, "src": fname, "n_runs": len(runs),
                       "header": ["metric"] + [f"{r['created']} ({r['commit'][:10]})" for r in runs], "rows": rows})
    return blocks


def _cell(m) -> str:
    if not isinstance(m, dict) or not isinstance(m.get("value"), (int, float)):
        return "-"
    text = f"{m['value']:.3g}"
    if isinstance(m.get("low"), (int, float)) and isinstance(m.get("high"), (int, float)):
        text += f" [{m['low']:.3g}\u2013{m['high']:.3g}]"
    return text
