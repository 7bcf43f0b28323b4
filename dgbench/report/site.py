"""Shared plumbing of the report pages: the Jinja2 environment (autoescaping on), section and table
records the templates render, the guard that turns a figure's failure into a sentence, and report.json,
the manifest `dgbench publish` reads."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from dgbench.report.data import RunView, headline
from dgbench.report.fmt import num, pct

MANIFEST = "report.json"   # what `dgbench publish` reads from each report folder
TEMPLATE_DIR = Path(__file__).with_name("templates")


def environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    from dgbench import __version__

    env.globals["version"] = __version__
    return env


def table(header, rows, caption="", pre=(), numeric=(), cls="") -> dict:
    return {"header": header, "rows": rows, "caption": caption, "pre": set(pre), "numeric": set(numeric), "cls": cls}


def section(sid, title, figs_or_reason=None, tables=(), intro="", reasons=(), details=()) -> dict:
    figs, why = [], list(reasons)
    if isinstance(figs_or_reason, str):
        why.append(figs_or_reason)
    elif figs_or_reason:
        figs = figs_or_reason
    return {"id": sid, "title": title, "figs": figs, "reasons": why, "tables": list(tables), "intro": intro,
            "details": list(details)}


def draw(fn, *args) -> list | str:
    """A figure that cannot be drawn from odd records costs its own section, not the report."""
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - reported on the page and on stderr, never swallowed silently
        print(f"dgbench report: warning: {fn.__name__}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return f"This figure could not be drawn from these records ({type(exc).__name__}: {exc})."


def headline_lines(view: RunView, limit: int = 6) -> list[str]:
    h = headline(view)
    lines = [f"{dec}: {num(v)} tok/s (best median)" for dec, v in h["best_committed_tok_s"].items()]
    lines += [f"{a['task']} {a['decoder']}: {pct(a['accuracy'])} of {a['n']}" for a in h["accuracy"]]
    if h["points_failed"]:
        lines.append(f"{h['points_failed']} failed point(s)")
    untested = (view.meta.get("tested_set") or {}).get("note")
    if untested:                                            # first: it qualifies every number after it
        lines.insert(0, str(untested))
        limit += 1
    return lines[:limit] + ([f"... {len(lines) - limit} more"] if len(lines) > limit else [])


def manifest(views: list[RunView], kind: str, title: str) -> dict:
    return {"kind": kind, "title": title, "created_utc": max(v.created for v in views),
            "generated_utc": datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ"),
            "machines": list(dict.fromkeys(v.machine for v in views)),
            "suites": list(dict.fromkeys(v.suite_name for v in views)),
            "commits": list(dict.fromkeys(v.commit for v in views)),
            "runs": [str(v.path) for v in views],
            "headline": [line for v in views for line in
                         ([f"[{v.name}]"] if len(views) > 1 else []) + headline_lines(v, 4 if len(views) > 1 else 6)]}



def write_manifest(out: Path, data: dict) -> None:
    (out / MANIFEST).write_text(json.dumps(data, indent=2), encoding="utf-8")
