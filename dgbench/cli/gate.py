"""`dgbench gate --baseline RUN_DIR|FILE|NAME --candidate RUN_DIR`: fail a change only for real regressions.

Exit codes: 0 pass (improvements are reported too), 1 at least one regression, 2 bad input or data
(missing baseline, corrupted results, mismatched configurations, different hardware).
"""

from __future__ import annotations

from dgbench.errors import EXIT_OK, EXIT_REGRESSION

NAME = "gate"

GATE_EPILOG = """\
examples:
  dgbench baseline save results/20261122T093830Z-smoke smoke     # once, on the machine that gates
  dgbench run --suite smoke --out results                         # later, after a change
  dgbench gate --baseline smoke --candidate results/20261122T101500Z-smoke --markdown gate.md
  dgbench gate --baseline results/old-run --candidate results/new-run --junit gate.xml --json gate.json
  dgbench gate --baseline smoke --candidate results/new-run --update-baseline   # record it when it passes
  dgbench run --suite smoke --gate-against smoke                  # run, then gate (writes RUN_DIR/gate.md)

rules (thresholds from the candidate suite's `gate:` section, defaults threshold 0.05, alpha 0.05):
  timing metrics   regression = median change beyond the threshold in the worse direction AND
                   Mann-Whitney U p < alpha over the raw repetitions (bootstrap 95% CI shown)
  counters         NFE, tokens/forward, useful tokens, steps/canvas: compared exactly
  accuracy         same items paired: exact McNemar p < alpha; a greedy decoder: compared exactly
  hardware         runs from different fingerprints are refused unless --allow-different-hardware

exit codes: 0 pass, 1 regression, 2 usage or data error (one line on stderr)
"""


def add_parser(sub, formatter) -> None:
    gate = sub.add_parser("gate", help="compare a run with a baseline; exit 1 on a real regression",
                          formatter_class=formatter, epilog=GATE_EPILOG,
                          description="Compare a candidate run with a baseline run point by point (matched by "
                                      "configuration) and metric by metric (direction from the metric "
                                      "definitions). A timing change fails only when it is beyond the threshold "
                                      "and statistically significant; counters are compared exactly; accuracy "
                                      "with a paired test on the same items.")
    gate.add_argument("--baseline", required=True, metavar="RUN_DIR|FILE|NAME",
                      help="a run directory, its run.json/points.jsonl, or a name saved with `dgbench baseline save`")
    gate.add_argument("--candidate", required=True, metavar="RUN_DIR", help="the run under test")
    add_output_arguments(gate)
    gate.add_argument("--allow-different-hardware", action="store_true",
                      help="gate runs from different hardware fingerprints (timings then compare machines)")
    gate.add_argument("--update-baseline", action="store_true",
                      help="when the gate passes, save the candidate over the named baseline (needs --baseline NAME)")


def add_output_arguments(parser) -> None:
    parser.add_argument("--dir", dest="baselines_dir", metavar="DIR",
                        help="folder of saved baselines (default: $DGBENCH_BASELINES or ./baselines)")
    parser.add_argument("--markdown", metavar="FILE", help="write a markdown summary (a pull-request comment)")
    parser.add_argument("--junit", metavar="FILE", help="write JUnit XML (one test case per point and metric)")
    parser.add_argument("--json", metavar="FILE", help="write every comparison as JSON")


def gate_run(baseline: str, candidate, baselines_dir: str | None = None, markdown: str | None = None,
             junit: str | None = None, json_path: str | None = None, allow_different_hardware: bool = False,
             update_baseline: bool = False) -> int:
    """Gate, print the table, write the requested files; the exit code (0 pass, 1 regression)."""
    from pathlib import Path

    from dgbench.errors import ConfigError
    from dgbench.gate.rules import compare_runs
    from dgbench.gate.baselines import baselines_dir as resolve_dir
    from dgbench.gate.baselines import resolve_baseline, save_baseline
    from dgbench.gate.outputs import console_table, summary_line, write_outputs

    folder = resolve_dir(baselines_dir)
    base_dir, saved_name = resolve_baseline(baseline, folder)
    if update_baseline and saved_name is None:
        raise ConfigError(f"--update-baseline needs --baseline NAME (a baseline saved in {folder}); "
                          f"{baseline!r} is a path")
    result = compare_runs(base_dir, Path(candidate), allow_different_hardware=allow_different_hardware)
    out = _console()
    out.print(console_table(result))
    for note in result.notes:
        out.print(f"  {note}", markup=False)
    out.print(summary_line(result), markup=False, style="bold green" if result.passed else "bold red")
    write_outputs(result, markdown, junit, json_path)
    if update_baseline and result.passed:
        saved = save_baseline(Path(candidate), saved_name, folder)
        out.print(f"baseline {saved_name!r} updated from {candidate} ({saved})", markup=False)
    return EXIT_OK if result.passed else EXIT_REGRESSION


def _console():
    import sys

    from rich.console import Console

    # Readable when piped into a CI log: a wide fixed width instead of 80 columns (as `dgbench run`).
    return Console(width=None if sys.stdout.isatty() else 200)


def main(args) -> int:
    return gate_run(args.baseline, args.candidate, args.baselines_dir, args.markdown, args.junit, args.json,
                    args.allow_different_hardware, args.update_baseline)
