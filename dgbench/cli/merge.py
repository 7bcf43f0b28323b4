"""`dgbench merge RUN_DIR... -o MERGED`: combine the shard directories of one suite into one run.

Exit codes: 0 merged (every point of the suite present), 1 merged with points failed or missing
(resume MERGED to finish them), 2 bad input (different suites, overlapping points, no run directory).
"""

from __future__ import annotations

import sys

NAME = "merge"

MERGE_EPILOG = """\
examples:
  dgbench run --suite throughput --shard 1/3 --out shards/1     # one per job of a job array
  dgbench run --suite throughput --shard 2/3 --out shards/2
  dgbench run --suite throughput --shard 3/3 --out shards/3
  dgbench merge shards/*/* -o results/throughput-merged
  dgbench report results/throughput-merged -o reports/throughput/

exit codes: 0 merged, every point present; 1 merged, some points failed or missing (dgbench run --resume
            MERGED measures the missing ones); 2 bad input (different suites, a point in two inputs)
"""


def add_parser(sub, formatter) -> None:
    p = sub.add_parser("merge", help="combine the shard runs of one suite into one run directory",
                       formatter_class=formatter, epilog=MERGE_EPILOG,
                       description="Combine run directories of one suite (the shards of `dgbench run --shard I/N`) "
                                   "into one run: refuses runs of different suites (config hash) and points "
                                   "measured twice; every point keeps the hardware it was measured on.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories (each holds run.json)")
    p.add_argument("-o", "--out", required=True, metavar="MERGED", help="new directory for the merged run")


def main(args) -> int:
    from pathlib import Path

    from dgbench.harness.merge import merge_runs

    result = merge_runs([Path(r) for r in args.runs], Path(args.out))
    for note in result["notes"]:
        print(f"note: {note}")
    print(f"merged {len(args.runs)} run(s): {result['points']} points ({result['failed']} failed), "
          f"{len(result['missing'])} missing; status {result['status']}. Results: {result['run_dir']}")
    if result["missing"]:
        print(f"dgbench: {len(result['missing'])} point(s) of the suite are in no input; measure them with: "
              f"dgbench run --resume {result['run_dir']}", file=sys.stderr)
    return 1 if result["missing"] or result["failed"] else 0
