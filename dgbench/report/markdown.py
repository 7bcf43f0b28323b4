"""`dgbench report --format md`: the report's numbers as GitHub-flavoured markdown (PR comments, READMEs).

Same sources as the HTML page (one run: speed per point, quality, failures; several runs: the deltas
with their significance). Cells come from results files, and GitHub renders inline HTML in comments,
so every cell is HTML-escaped and its pipes escaped.
"""

from __future__ import annotations

import html

from dgbench.report import tables as tb
from dgbench.report.tables import SPEED_COLUMNS
from dgbench.report.data import RunView, params_label, summary_of
from dgbench.report.fmt import display_unit, spread
from dgbench.report.site import headline_lines

MAX_ROWS = 200  # a PR comment over ~65k characters is refused by GitHub


def cell(text) -> str:
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def md_table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows[:MAX_ROWS]]
    if len(rows) > MAX_ROWS:
        lines.append(f"\n({len(rows) - MAX_ROWS} more rows in the HTML report)")
    return lines


def run_markdown(view: RunView) -> str:
    lines = [f"### dgbench {cell(view.suite_name)}: {cell(view.machine)}", "",
             f"Run `{cell(view.name)}`, commit `{cell(view.commit or '?')}`, {cell(view.created)}: "
             f"{len(view.ok)} points measured, {len(view.failed)} failed. Weights: {cell(view.meta.get('weights', '?'))}.",
             ""]
    speed = [p for p in view.ok if not p.get("quality")]
    if speed:
        cols = [c for c in SPEED_COLUMNS if any(summary_of(p, c[1]) for p in speed)]
        rows = []
        for p in speed:
            n = (summary_of(p, "e2e_s") or {}).get("n", 0)
            rows.append([p["decoder"], params_label(p)] + [spread(summary_of(p, m), display_unit(
                tb.metric_info(m).unit)[0]) for _, m in cols] + [n])
        lines += md_table(["decoder", "params"] + [h for h, _ in cols] + ["n"], rows) + [""]
    quality = tb.quality_rows(view)
    if quality:
        lines += md_table(["decoder", "model", "task", "n", "correct", "accuracy", "95% Wilson", "committed tok/s",
                           "NFE", "tok/forward"], quality) + [""]
        tests = tb.mcnemar_rows(view.ok)
        if tests:
            lines += ["McNemar (paired, same items):", ""]
            lines += md_table(["task", "A", "B", "items", "b01", "b10", "p", "method"], tests) + [""]
    failures = tb.failures(view)
    if failures:
        lines += [f"**{len(failures)} failed point(s):**", ""] + md_table(["point", "kind", "message"], failures) + [""]
    lines.append("Cells: median [p10-p90] over n timed repetitions after warmup; accuracy with its 95% Wilson "
                 "interval. Definitions: committed tok/s = useful tokens / wall time of the whole call.")
    return "\n".join(lines) + "\n"


def comparison_markdown(views: list[RunView]) -> str:
    from dgbench.report.compare import ALPHA, deltas, match_points

    rows, mode = match_points(views)
    delta_rows, acc_rows, unmatched = deltas(views, rows)
    lines = ["### dgbench comparison", ""]
    lines += md_table(["run", "directory", "suite", "machine", "commit", "points ok / failed"],
                      [[f"run {i + 1}" + (" (baseline)" if i == 0 else ""), v.name, v.suite_name, v.machine,
                        v.commit or "?", f"{len(v.ok)} / {len(v.failed)}"] for i, v in enumerate(views)]) + [""]
    if mode == "configuration":
        lines += ["Runs share no decoder: rows match by task and sweep parameters.", ""]
    key = [r for r in delta_rows if r[2].split(" ")[0] in ("committed_tok_s", "e2e_s", "ttft_s", "nfe")]
    if key:
        lines += md_table(["point", "runs", "metric", "run 1", "other", "n", "delta", "p", "significance",
                           "gate verdict"], key) + [""]
    if acc_rows:
        lines += md_table(["point", "runs", "run 1 accuracy", "other", "delta", "items in both", "p", "significance",
                           "gate verdict"],
                          acc_rows) + [""]
    if unmatched:
        lines += [f"{len(unmatched)} point(s) not measured in every run."]
    lines.append(f"Timings: two-sided Mann-Whitney U on raw repetitions, significant at p < {ALPHA}; accuracy: "
                 "McNemar on shared items.")
    lines += [f"Headline run {i + 1}: " + "; ".join(cell(x) for x in headline_lines(v, 3)) for i, v in enumerate(views)]
    return "\n".join(lines) + "\n"


def markdown(views: list[RunView]) -> str:
    return run_markdown(views[0]) if len(views) == 1 else comparison_markdown(views)
