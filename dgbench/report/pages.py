"""Which page a report is: one run (report/html.py) or a comparison of several (report/compare.py)."""

from __future__ import annotations

from pathlib import Path

from dgbench.report.compare import render_comparison
from dgbench.report.data import RunView, load_view
from dgbench.report.html import render_run


def write_report(run_dirs: list[str | Path], out: str | Path) -> Path:
    """Render one run's report, or a comparison of several, into `out`; returns the index.html path."""
    return write_views([load_view(d) for d in run_dirs], Path(out))


def write_views(views: list[RunView], out: Path) -> Path:
    if len(views) == 1:
        render_run(views[0], out)
    else:
        render_comparison(views, out)
    return out / "index.html"
