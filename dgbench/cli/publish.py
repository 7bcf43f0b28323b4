"""`dgbench publish FOLDER`: index.html over every report in FOLDER (newest first), for static hosting.

Exit codes: 0 written, 2 bad input (FOLDER does not exist).
"""

from __future__ import annotations

NAME = "publish"

PUBLISH_EPILOG = """\
examples:
  dgbench report results/20261122T093810Z-smoke -o reports/smoke-cpu/
  dgbench publish reports/                 # writes reports/index.html and reports/.nojekyll
  python -m http.server -d reports 8000    # or push reports/ to GitHub Pages; links are relative

exit codes: 0 written, 2 bad input (no such folder)
"""


def add_parser(sub, formatter) -> None:
    p = sub.add_parser("publish", help="index page over all reports in a folder (static hosting)",
                       formatter_class=formatter, epilog=PUBLISH_EPILOG,
                       description="Write FOLDER/index.html listing every report below FOLDER (each has a "
                                   "report.json), newest run first: machine, suite, commit, headline numbers. "
                                   "Relative links only, so the folder works from file:// and any static host.")
    p.add_argument("folder", metavar="FOLDER", help="folder holding reports written by `dgbench report -o`")
    p.add_argument("--title", default="dgbench reports", help="page title (default: dgbench reports)")


def main(args) -> int:
    from dgbench.report.publish import publish

    index, n = publish(args.folder, args.title)
    print(f"published {n} report(s): {index}")
    return 0
