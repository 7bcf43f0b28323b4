"""`dgbench report RUN_DIR [RUN_DIR ...] -o DIR`: an HTML report (or markdown summary) of one or more runs.

Exit codes: 0 written, 2 bad input (a missing or corrupted run directory: one line saying which).
"""

from __future__ import annotations

import sys

NAME = "report"

REPORT_EPILOG = """\
examples:
  dgbench report results/20261122T093810Z-smoke -o reports/smoke/
  dgbench report results/A results/B -o reports/a-vs-b/       # comparison: run A is the baseline
  dgbench report results/20261122T093810Z-smoke --format md   # markdown to stdout (PR comments)
  dgbench report results/A results/B -o reports/a-vs-b/ --format both
  dgbench publish reports/                                    # then an index over every report

The site is self-contained (index.html, figures/*.png, report.json): it opens from file:// and from any
static server, and loads nothing from another host.

exit codes: 0 written, 2 bad input (missing or corrupted run directory, no -o for HTML)
"""


def add_parser(sub, formatter) -> None:
    p = sub.add_parser("report", help="HTML report (or markdown) of one run, or a comparison of several",
                       formatter_class=formatter, epilog=REPORT_EPILOG,
                       description="Render results into a self-contained HTML site: run and hardware, speed vs "
                                   "accuracy with the Pareto frontier, sweeps, latency distributions, NFE, steps per "
                                   "canvas, telemetry, roofline, projections, a denoising trajectory, every metric "
                                   "with unit, n and spread. Several RUN_DIRs give a comparison with deltas and "
                                   "significance tests (the first is the baseline).")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories written by `dgbench run`")
    p.add_argument("-o", "--out", metavar="DIR", help="folder for the site (created; files in it are replaced)")
    p.add_argument("--format", choices=["html", "md", "both"], default="html",
                   help="html (default), md (markdown summary: to stdout, and DIR/summary.md with -o), or both")


def main(args) -> int:
    from pathlib import Path

    from dgbench.errors import ConfigError
    from dgbench.report.data import load_view

    if args.format in ("html", "both") and not args.out:
        raise ConfigError("--out DIR is required for an HTML report (e.g. -o reports/NAME/); "
                          "use --format md to print markdown only")
    views = [load_view(d) for d in args.run_dirs]
    if args.format in ("html", "both"):
        from dgbench.report.pages import write_views

        index = write_views(views, Path(args.out))
        print(f"report: {index} ({'comparison of ' + str(len(views)) + ' runs' if len(views) > 1 else 'one run'})",
              file=sys.stderr)
    if args.format in ("md", "both"):
        from dgbench.report.markdown import markdown

        text = markdown(views)
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            (Path(args.out) / "summary.md").write_text(text, encoding="utf-8")
        sys.stdout.write(text)
    return 0
