"""`dgbench export RUN_DIR --format csv|parquet|json|vllm`: a run's tidy tables for pandas, R, a spreadsheet
or a `vllm bench serve` comparison (dgbench/analysis/export.py says what each table holds).

Exit codes: 0 written, 2 bad input (no such run, unknown format, pyarrow missing for parquet).
"""

from __future__ import annotations

NAME = "export"

EXPORT_EPILOG = """\
examples:
  dgbench export results/20261122T093810Z-latency --format csv      # export/repetitions.csv, export/points.csv
  dgbench export results/RUN --format parquet -o /tmp/run-tables     # needs pyarrow (pip install 'dgbench[parquet]')
  dgbench export results/RUN --format vllm                           # export/vllm.json, vllm bench serve keys
  python -c "import pandas as pd; print(pd.read_csv('results/RUN/export/repetitions.csv'))"

exit codes: 0 written, 2 bad input
"""


def add_parser(sub, formatter) -> None:
    p = sub.add_parser("export", help="write a run's per-repetition and per-point tables (csv, parquet, json, vllm)",
                       formatter_class=formatter, epilog=EXPORT_EPILOG,
                       description="Tidy tables of one run through pandas: one row per repetition (knobs flattened "
                                   "into knob.* columns) and one row per point (n, p10/p50/p90/p99 per metric); "
                                   "--format vllm writes vllm bench serve result keys where the meaning matches.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `dgbench run`")
    p.add_argument("--format", dest="fmt", default="csv", choices=["csv", "parquet", "json", "vllm"],
                   help="output format (default: csv)")
    p.add_argument("-o", "--out", metavar="DIR", help="folder to write into (default: RUN_DIR/export)")


def main(args) -> int:
    from pathlib import Path

    from dgbench.analysis.export import export
    from dgbench.errors import ResultsError

    if not Path(args.run_dir).is_dir():
        raise ResultsError(f"{args.run_dir}: no such run directory; pass a folder written by `dgbench run`")
    for path in export(args.run_dir, args.fmt, args.out):
        print(f"wrote {path}")
    return 0
