"""`dgbench publish FOLDER`: an index page over every report in a folder, ready for static hosting.

Each report folder holds report.json (written by `dgbench report`); the index lists them newest run
first with machine, suite, commit and headline numbers, linking with relative paths so the folder can
be copied anywhere (GitHub Pages, any static server, file://). An empty .nojekyll file stops GitHub
Pages' Jekyll from hiding paths that start with an underscore.
"""

from __future__ import annotations

import json
from pathlib import Path

from dgbench.errors import ResultsError
from dgbench.report.site import MANIFEST, environment

MAX_DEPTH = 3  # report folders may be grouped (reports/main/2026-11-22/...), but not searched without end


def report_href(rel: Path) -> str:
    """A relative link to a report folder: percent-encoded (a folder may be named `javascript:alert(1)`
    or hold `"`, `#`, `?`) and prefixed `./`, so no folder name is ever read as a URL scheme."""
    from urllib.parse import quote

    return "./" + "/".join(quote(part, safe="") for part in rel.parts) + "/index.html"


def find_reports(folder: Path) -> tuple[list[dict], list[str]]:
    """(entries, skipped): one entry per report.json below folder; unreadable ones become a sentence."""
    entries, skipped = [], []
    for manifest in sorted(folder.rglob(MANIFEST)):
        rel = manifest.parent.relative_to(folder)
        if len(rel.parts) == 0 or len(rel.parts) > MAX_DEPTH or "runs" in rel.parts:
            continue  # the folder itself, too deep, or a comparison's per-run sub-report
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
            entries.append({"name": rel.as_posix(), "href": report_href(rel),
                            "created": str(data.get("created_utc", "")), "kind": str(data.get("kind", "?")),
                            "machine": "; ".join(data.get("machines") or []), "suite": ", ".join(data.get("suites") or []),
                            "commit": ", ".join(c for c in data.get("commits") or [] if c),
                            "headline": [str(x) for x in data.get("headline") or []]})
        except (ValueError, OSError, AttributeError, TypeError, RecursionError) as exc:  # ValueError: JSON, UTF-8
            skipped.append(f"{rel.as_posix()}/{MANIFEST} could not be read ({type(exc).__name__}); re-create that "
                           "report with dgbench report.")
    entries.sort(key=lambda e: (e["created"], e["name"]), reverse=True)
    return entries, skipped


def publish(folder: str | Path, title: str = "dgbench reports") -> tuple[Path, int]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ResultsError(f"{folder}: no such folder; write reports into it first with "
                           f"`dgbench report RUN_DIR -o {folder}/NAME/`")
    entries, skipped = find_reports(folder)
    from dgbench.report.history import draw_history

    history = draw_history(folder, entries)
    html = environment().get_template("publish.html").render(
        title=title, subtitle=f"{len(entries)} report(s), newest run first.", entries=entries, skipped=skipped,
        folder=folder.as_posix(), history=history)
    index = folder / "index.html"
    from dgbench.results import atomic_write_text

    atomic_write_text(index, html)
    (folder / ".nojekyll").touch()
    return index, len(entries)
