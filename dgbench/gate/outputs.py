"""The gate's outputs: a console table, markdown for a pull-request comment, JUnit XML and JSON.

All four show the same rows: metric, baseline, candidate, change, significant, verdict. Names that come
from a suite (decoders, params) are escaped for the format they land in: markdown table cells and XML.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

from dgbench.gate.rules import CANNOT_TELL, FAILED, IMPROVEMENT, REGRESSION, Comparison, GateResult

_ORDER = {FAILED: 0, REGRESSION: 1, CANNOT_TELL: 2, IMPROVEMENT: 3}


def _num(x: float | None, unit: str = "") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if unit == "fraction":
        return f"{100 * x:.1f}%"
    if unit == "s":
        return f"{1e3 * x:.3g} ms"
    return f"{x:.4g}" + (f" {unit}" if unit else "")


def change_text(c: Comparison) -> str:
    if c.kind == "status" or c.change is None or math.isnan(c.change):
        return "-"
    if c.kind == "accuracy":
        return f"{100 * c.change:+.1f} pts"
    if math.isinf(c.change):
        return "from 0"
    text = f"{100 * c.change:+.1f}%"
    if c.interval is not None and not any(math.isnan(v) for v in c.interval):
        text += f" [{100 * c.interval[0]:+.0f}%, {100 * c.interval[1]:+.0f}%]"
    return text


def significance_text(c: Comparison) -> str:
    if c.kind == "exact":
        return "exact"
    if c.test.startswith("exact (greedy"):  # no sampling noise: the drop itself decides, p for reference
        return f"exact, greedy (McNemar p={c.p_value:.2g})"
    if c.p_value is None:
        return "n/a"
    mark = "yes" if c.significant else "no"
    if c.kind == "timing" and c.p_adjusted is not None:
        return f"{mark} (p={c.p_value:.2g}, Holm {c.p_adjusted:.2g})"
    return f"{mark} (p={c.p_value:.2g})"


def mde_text(c: Comparison) -> str:
    """The minimum detectable effect: relative for timings, in points for a sampled accuracy."""
    if c.mde is None or (isinstance(c.mde, float) and math.isnan(c.mde)):
        return "-"
    if math.isinf(c.mde):
        return "∞"
    if c.kind == "accuracy":
        return f"{100 * c.mde:.0f} pts"
    return f"±{100 * c.mde:.1f}%"


def verdict_text(c: Comparison) -> str:
    if c.verdict == CANNOT_TELL:
        return f"cannot tell (noise {mde_text(c)} > threshold {100 * (c.threshold or 0):.0f}%)"
    return {REGRESSION: "REGRESSION", FAILED: "FAILED", IMPROVEMENT: "improved"}.get(c.verdict, "ok")


def rows(result: GateResult) -> list[list[str]]:
    """Table rows, regressions first, each with point, metric, baseline, candidate, change, significant, verdict."""
    return [[c.point, c.metric, _num(c.baseline, c.unit), _num(c.candidate, c.unit), change_text(c),
             significance_text(c), verdict_text(c), c.note, mde_text(c)] for c in ordered(result)]


def ordered(result: GateResult) -> list[Comparison]:
    return sorted(result.comparisons, key=lambda c: _ORDER.get(c.verdict, 4))


HEADERS = ["point", "metric", "baseline", "candidate", "change [95% CI]", "significant", "verdict", "note", "MDE"]


def summary_line(result: GateResult) -> str:
    n_reg, n_imp, n_ct = len(result.regressions), len(result.improvements), len(result.cannot_tell)
    head = "PASS" if result.passed else "FAIL"
    paired = any(c.design.startswith("paired") for c in result.comparisons)
    test = "paired t on interleaved blocks" if paired else "Mann-Whitney"
    return (f"{head}: {n_reg} regression(s), {n_imp} improvement(s), {n_ct} cannot tell in "
            f"{len(result.comparisons)} comparisons (timing: beyond threshold and {test} p < {result.alpha} "
            f"after Holm-Bonferroni; counters exact; accuracy paired)")


def console_table(result: GateResult):
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"dgbench gate: {escape(result.candidate_dir)} vs baseline {escape(result.baseline_dir)}")
    for h in HEADERS:
        table.add_column(h, justify="right" if h in ("baseline", "candidate", "change [95% CI]") else "left")
    for row in rows(result):
        style = {"REGRESSION": "bold red", "FAILED": "bold red", "improved": "green"}.get(
            row[6], "yellow" if row[6].startswith("cannot tell") else None)
        table.add_row(*[escape(x) for x in row], style=style)
    return table


def _md_cell(text: str) -> str:
    # A pipe or a newline would break the table; < and & would be read as HTML by GitHub.
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("|", "\\|").replace("\n", " "))


def markdown(result: GateResult) -> str:
    icon = "✅" if result.passed else "❌"
    lines = [f"## {icon} dgbench gate: {summary_line(result)}", "",
             f"- baseline: `{_md_cell(result.baseline_dir)}` (commit {_md_cell(str(result.baseline_commit))})",
             f"- candidate: `{_md_cell(result.candidate_dir)}` (commit {_md_cell(str(result.candidate_commit))})",
             f"- hardware: {_md_cell(result.hardware)}"]
    lines += [f"- {_md_cell(n)}" for n in (result.family, result.confirmation) if n] + [""]
    lines += ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for row in rows(result):
        if row[6] in ("REGRESSION", "FAILED"):
            row = row[:6] + [f"**{row[6]}**"] + row[7:]
        lines.append("| " + " | ".join(_md_cell(x) if i != 6 else x for i, x in enumerate(row)) + " |")
    if result.notes:
        lines += [""] + [f"- {_md_cell(n)}" for n in result.notes]
    lines += ["", "Change: candidate / baseline - 1 (interleaved: geometric mean of the paired block-median "
              "ratios, t interval; separate runs: ratio of the medians, bootstrap interval), 95%; accuracy in "
              "percentage points on the same items. MDE: the smallest change the data would detect with 80% power "
              "at the family's strictest level; above the threshold the verdict is \"cannot tell\"."]
    return "\n".join(lines) + "\n"


def junit_xml(result: GateResult) -> str:
    """One test case per (point, metric); regressions are failures (what CI systems show as red)."""
    suite = ET.Element("testsuite", name="dgbench gate", tests=str(len(result.comparisons)),
                       failures=str(len(result.regressions)), errors="0")
    for c, row in zip(ordered(result), rows(result)):
        case = ET.SubElement(suite, "testcase", classname=f"dgbench.gate.{c.point}", name=c.metric)
        message = (f"{c.metric} {verdict_text(c)}: baseline {row[2]}, candidate {row[3]}, change {row[4]}, "
                   f"significant {row[5]}, MDE {row[8]}" + (f"; {c.note}" if c.note else ""))
        if c.verdict in (REGRESSION, FAILED):
            ET.SubElement(case, "failure", message=message, type=c.verdict).text = message
        elif c.verdict == CANNOT_TELL:   # neither pass nor fail: what CI systems show as skipped
            ET.SubElement(case, "skipped", message=message)
        else:
            ET.SubElement(case, "system-out").text = message
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def write_outputs(result: GateResult, markdown_path: str | None = None, junit_path: str | None = None,
                  json_path: str | None = None) -> None:
    for path, text in ((markdown_path, lambda: markdown(result)), (junit_path, lambda: junit_xml(result)),
                       (json_path, lambda: json.dumps(result.to_dict(), indent=2, default=str) + "\n")):
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text(), encoding="utf-8")
