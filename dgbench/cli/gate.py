"""`dgbench gate --baseline RUN_DIR|FILE|NAME --candidate RUN_DIR`: fail a change only for real regressions.
`dgbench gate --measure --baseline-ref REF --suite S`: measure both sides interleaved here, then gate.

Exit codes: 0 pass (improvements are reported too), 1 at least one regression, 2 bad input or data
(missing baseline, corrupted results, mismatched configurations, different hardware), 3 "cannot tell"
with --cannot-tell fail (no regression found, but the noise hides changes above the threshold).
"""

from __future__ import annotations

from dgbench.errors import EXIT_CANNOT_TELL, EXIT_OK, EXIT_REGRESSION
from dgbench.textsafe import clean

NAME = "gate"

GATE_EPILOG = """\
examples:
  dgbench baseline save results/20261122T093830Z-smoke smoke     # once, on the machine that gates
  dgbench run --suite smoke --out results                         # later, after a change
  dgbench gate --baseline smoke --candidate results/20261122T101500Z-smoke --markdown gate.md
  dgbench gate --baseline results/old-run --candidate results/new-run --junit gate.xml --json gate.json
  dgbench gate --baseline smoke --candidate results/new-run --update-baseline   # record it when it passes
  dgbench run --suite smoke --gate-against smoke                  # run, then gate (writes RUN_DIR/gate.md)
  dgbench gate --measure --baseline-ref origin/main --suite smoke --markdown gate.md   # interleaved, one job
  dgbench gate --measure --baseline-dir . --suite smoke \
      --candidate-set decoders.0.knobs.extra_forward_passes=1     # same code against a planted slowdown

rules (thresholds from the candidate suite's `gate:` section, defaults threshold 0.05, alpha 0.05):
  timing metrics   regression = change beyond the threshold in the worse direction AND significant
                   after Holm-Bonferroni over all timing comparisons of the gate (family-wise alpha).
                   --measure (blocks of both sides A B B A ... on one CPU, or at the same time): paired
                   t-test on the log ratios of the block medians; two separate runs: Mann-Whitney U on
                   the repetitions (bootstrap CI)
  cannot tell      no regression found, but the minimum detectable effect (80% power at alpha/K) is
                   above the threshold: "cannot tell (noise ±X% > threshold Y%)"; exit 0, or 3 with
                   --cannot-tell fail
  confirmation     --measure re-measures flagged timing points (fresh interleaved blocks): a regression
                   fails, and an improvement is reported, only if it reproduces (--no-confirm: the
                   first measurement counts)
  counters         NFE, tokens/forward, useful tokens, steps/canvas: compared exactly
  accuracy         same items paired: exact McNemar p < alpha; a greedy decoder: compared exactly
  hardware         runs from different fingerprints are refused unless --allow-different-hardware

exit codes: 0 pass, 1 regression, 2 usage or data error (one line on stderr), 3 cannot tell (only with
            --cannot-tell fail)
"""


def add_parser(sub, formatter) -> None:
    gate = sub.add_parser("gate", help="compare a run with a baseline; exit 1 on a real regression",
                          formatter_class=formatter, epilog=GATE_EPILOG,
                          description="Compare a candidate run with a baseline run point by point (matched by "
                                      "configuration) and metric by metric (direction from the metric "
                                      "definitions). A timing change fails only when it is beyond the threshold "
                                      "and statistically significant; counters are compared exactly; accuracy "
                                      "with a paired test on the same items.")
    gate.add_argument("--baseline", metavar="RUN_DIR|FILE|NAME",
                      help="a run directory, its run.json/points.jsonl, or a name saved with `dgbench baseline save`")
    gate.add_argument("--candidate", metavar="RUN_DIR", help="the run under test")
    add_output_arguments(gate)
    gate.add_argument("--cannot-tell", choices=["pass", "fail"], default="pass",
                      help="what a 'cannot tell' verdict (noise above the threshold) does to the exit code: "
                           "pass (exit 0, reported) or fail (exit 3)")
    m = gate.add_argument_group("measuring both sides here, interleaved (--measure)")
    m.add_argument("--measure", action="store_true",
                   help="measure baseline and candidate in this job, interleaved block by block, then gate")
    m.add_argument("--suite", help="suite name or .yaml path to measure (a name is resolved by each checkout)")
    m.add_argument("--baseline-ref", metavar="REF", help="git commit/branch/tag to measure as the baseline "
                                                         "(a worktree is built for it)")
    m.add_argument("--baseline-dir", metavar="DIR", help="or a dgbench checkout folder as the baseline")
    m.add_argument("--candidate-ref", metavar="REF", help="git ref to measure as the candidate (default: the "
                                                          "checkout running this command, uncommitted changes too)")
    m.add_argument("--candidate-dir", metavar="DIR", help="or a dgbench checkout folder as the candidate")
    m.add_argument("--repo", metavar="DIR", default=".", help="the git repository the refs belong to (default: .)")
    m.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="suite override for both sides (as `dgbench run --set`)")
    m.add_argument("--candidate-set", dest="candidate_sets", action="append", default=[], metavar="KEY=VALUE",
                   help="suite override for the candidate only (e.g. a testing knob that plants a slowdown)")
    m.add_argument("--blocks", type=int, default=None, help="interleaved blocks a side (default 96)")
    m.add_argument("--block-reps", type=int, default=None, help="timed repetitions per block (default 2)")
    m.add_argument("--schedule", choices=["concurrent", "alternate"], default="alternate",
                   help="alternate: one side after the other, A B B A ..., on one CPU (default); concurrent: "
                        "both sides measure block i at the same time, on different cores")
    m.add_argument("--pin-cpu", default="auto", metavar="auto|none|N",
                   help="pin both sides' workers to one CPU (auto: the last usable CPU, alternate schedule "
                        "only; none: no pin; N: that CPU)")
    m.add_argument("--processes", type=int, default=None, metavar="P",
                   help="fresh worker-process pairs over the blocks (default 1); with P >= 2 the test's unit is "
                        "the process pair, so a pair that runs slower for its whole life counts as noise")
    m.add_argument("--no-confirm", action="store_true",
                   help="the first measurement counts: flagged regressions and improvements are not re-measured")
    m.add_argument("--out", metavar="DIR", default=None,
                   help="where the measured runs go (default: ./gate-runs/<UTC stamp>)")
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
             update_baseline: bool = False, cannot_tell: str = "pass") -> int:
    """Gate, print the table, write the requested files; the exit code (0 pass, 1 regression)."""
    from pathlib import Path

    from dgbench.errors import ConfigError
    from dgbench.gate.baselines import baselines_dir as resolve_dir
    from dgbench.gate.baselines import resolve_baseline, save_baseline
    from dgbench.gate.rules import compare_runs

    folder = resolve_dir(baselines_dir)
    base_dir, saved_name = resolve_baseline(baseline, folder)
    if update_baseline and saved_name is None:
        raise ConfigError(f"--update-baseline needs --baseline NAME (a baseline saved in {folder}); "
                          f"{baseline!r} is a path")
    from dgbench.results import ensure_writable_file

    for flag, path in (("--markdown", markdown), ("--junit", junit), ("--json", json_path)):
        if path:  # an unwritable output is refused before the comparison prints, not after
            ensure_writable_file(path, flag)
    result = compare_runs(base_dir, Path(candidate), allow_different_hardware=allow_different_hardware)
    code = show_result(result, markdown, junit, json_path, cannot_tell)
    if update_baseline and result.passed:
        saved = save_baseline(Path(candidate), saved_name, folder)
        _console().print(f"baseline {saved_name!r} updated from {candidate} ({saved})", markup=False)
    return code


def show_result(result, markdown: str | None, junit: str | None, json_path: str | None, cannot_tell: str) -> int:
    """Print the table and notes, write the files; the exit code (0 pass, 1 regression, 3 cannot tell + fail)."""
    from dgbench.gate.outputs import console_table, summary_line, write_outputs

    out = _console()
    out.print(console_table(result))
    for note in result.notes + [n for n in (result.family, result.confirmation) if n]:
        out.print(f"  {clean(note)}", markup=False)
    out.print(clean(summary_line(result)), markup=False, style="bold green" if result.passed else "bold red")
    write_outputs(result, markdown, junit, json_path)
    if not result.passed:
        return EXIT_REGRESSION
    return EXIT_CANNOT_TELL if cannot_tell == "fail" and result.cannot_tell else EXIT_OK


def measure_run(args) -> int:
    """`gate --measure`: build the sides, measure interleaved (+ confirmation), gate, report."""
    from pathlib import Path

    from dgbench.errors import ConfigError
    from dgbench.gate.interleave import DEFAULT_BLOCK_REPS, DEFAULT_BLOCKS, DEFAULT_PROCESSES, resolve_pin
    from dgbench.gate.measured import MeasureOptions, cleanup, measure_and_gate, prepare_side
    from dgbench.results import utc_stamp

    if not args.suite:
        raise ConfigError("--measure needs --suite NAME|FILE (the suite both sides run, e.g. --suite smoke)")
    if not (args.baseline_ref or args.baseline_dir):
        raise ConfigError("--measure needs --baseline-ref REF (a git commit to build) or --baseline-dir DIR")
    if args.baseline or args.candidate:
        raise ConfigError("--measure measures both sides itself; drop --baseline/--candidate (they gate "
                          "existing runs)")
    cpu = resolve_pin(args.pin_cpu, args.schedule)     # a bad --pin-cpu stops before any worktree is built
    out_dir = Path(args.out or Path("gate-runs") / utc_stamp())
    repo = Path(args.repo).resolve()
    worktrees = []
    try:
        baseline, wt = prepare_side("baseline", args.baseline_ref, args.baseline_dir, repo, out_dir, [])
        worktrees.append(wt)
        candidate, wt = prepare_side("candidate", args.candidate_ref, args.candidate_dir, repo, out_dir,
                                     list(args.candidate_sets))
        worktrees.append(wt)
        options = MeasureOptions(args.suite, out_dir, args.blocks or DEFAULT_BLOCKS,
                                 args.block_reps or DEFAULT_BLOCK_REPS, tuple(args.sets), not args.no_confirm,
                                 schedule=args.schedule, processes=args.processes or DEFAULT_PROCESSES,
                                 cpu=cpu)
        out = _console()
        out.print(f"measuring {baseline.label} (baseline) and {candidate.label} (candidate) interleaved: "
                  f"{options.blocks} blocks x {options.block_reps} repetitions a side, {options.schedule}"
                  f"{'' if options.cpu is None else f' on CPU {options.cpu}'} -> {out_dir}", markup=False)
        result = measure_and_gate(options, baseline, candidate,
                                  progress=lambda msg: out.print(f"  {msg}", markup=False))
    finally:
        cleanup(repo, worktrees)
    return show_result(result, args.markdown, args.junit, args.json, args.cannot_tell)


def _console():
    import sys

    from rich.console import Console

    # Readable when piped into a CI log: a wide fixed width instead of 80 columns (as `dgbench run`).
    return Console(width=None if sys.stdout.isatty() else 200)


def main(args) -> int:
    from dgbench.errors import ConfigError

    if args.measure:
        return measure_run(args)
    if not args.baseline or not args.candidate:
        raise ConfigError("gate needs --baseline RUN_DIR|FILE|NAME and --candidate RUN_DIR, or --measure "
                          "--baseline-ref REF --suite NAME to measure both sides here")
    return gate_run(args.baseline, args.candidate, args.baselines_dir, args.markdown, args.junit, args.json,
                    args.allow_different_hardware, args.update_baseline, args.cannot_tell)
