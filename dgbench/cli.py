"""The `dgbench` command. Bad input ends in one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_OK, EXIT_POINTS_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143

RUN_EPILOG = """\
examples:
  dgbench run --suite smoke                       # tiny models, under a minute on a laptop CPU
  dgbench run --suite latency --device cuda       # batch-1 latency, diffusion vs autoregressive
  dgbench run --suite throughput --set sweep.batch_size=[1,8] --set measure.min_repetitions=5
  dgbench run --suite my_suite.yaml --dry-run     # show the expanded sweep and its cost, run nothing
  dgbench run --resume results/20261122T070000Z-latency   # finish an interrupted run
  dgbench run --suite quality --limit 20          # sudoku, multiple choice, code infill: accuracy + speed

exit codes: 0 all points measured (and, with --gate-against, the gate passed),
            1 some points failed (recorded in points.jsonl) or the gate found a regression,
            2 bad input (suite, flag, path, baseline, results file), 3 internal error (traceback saved),
            130 interrupted by Ctrl-C, 143 by SIGTERM (either way: resume with --resume RUN_DIR)
"""

LIST_EPILOG = """\
examples:
  dgbench list suites      # built-in suites and ./suites/*.yaml
  dgbench list models      # model specs: family, paradigm, parameters, canvas length, source
  dgbench list engines     # decoding engines and their knobs (what a suite's `knobs:` may set)
  dgbench list profiles    # hardware profiles (peak FLOP/s, bandwidth, with sources)
  dgbench list tasks       # quality tasks
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors: one line (the usage is one --help away), exit 2
        from dgbench.textsafe import one_line

        print(f"dgbench: error: {one_line(message)} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dgbench", formatter_class=_Formatter,
                     description="Benchmark diffusion against autoregressive decoding: speed, quality, telemetry.",
                     epilog="Start with:  dgbench run --suite smoke   (then `dgbench run --help`)")
    from dgbench import __version__

    parser.add_argument("--version", action="version", version=f"dgbench {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of any error (also DGBENCH_DEBUG=1); may follow the command too")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = sub.add_parser("run", help="run a suite and store its results", formatter_class=_Formatter,
                         description="Run a benchmark suite: every sweep point is measured (warmup, then "
                                     "repetitions) and stored in RUN_DIR/points.jsonl as soon as it is done.",
                         epilog=RUN_EPILOG)
    run.add_argument("--suite", metavar="NAME|PATH", help="a built-in suite name or a suite YAML file")
    run.add_argument("--out", metavar="DIR", default="results",
                     help="folder under which the run directory <UTC time>-<suite> is created (default: results)")
    run.add_argument("--device", default="auto", metavar="auto|cpu|cuda[:N]",
                     help="where to run (default: auto = cuda:0 if visible, else cpu)")
    run.add_argument("--seed", type=int, help="override the suite's seed (prompts and sampling)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override any suite field, value in YAML: --set sweep.gen_length=[32,64] "
                          "--set decoders.0.knobs.max_denoising_steps=8 (repeatable)")
    run.add_argument("--limit", type=int, metavar="N",
                     help="quality suites: score at most N items per task (a quick look; ids differ from a full run)")
    run.add_argument("--dry-run", action="store_true", help="print the expanded sweep and its cost; run nothing")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run; finished points are kept")
    run.add_argument("--profile", metavar="NAME",
                     help="hardware profile for the roofline (MFU/MBU, predictions); default: detected, or this "
                          "CPU's measured profile (see `dgbench list profiles`, `dgbench profile`)")
    run.add_argument("--emulate-memory", metavar="PROFILE",
                     help="cap CUDA memory to PROFILE's capacity (e.g. rtx-4090: 24 GB) to see what fits; CUDA only")
    run.add_argument("--gate-against", metavar="RUN_DIR|FILE|NAME",
                     help="after the run, gate it against this baseline (see `dgbench gate --help`); writes "
                          "RUN_DIR/gate.md, gate.xml, gate.json; exit 1 on a regression")

    lst = sub.add_parser("list", help="list suites, models, engines, tasks or hardware profiles",
                         formatter_class=_Formatter, epilog=LIST_EPILOG,
                         description="List what dgbench knows about.")
    lst.add_argument("what", choices=["suites", "models", "engines", "tasks", "profiles"])

    for module in _command_modules():
        module.add_parser(sub, _Formatter)
    return parser


# Subcommands beyond run/list live in their own modules: each exposes `NAME`, `add_parser(sub,
# formatter)` and `main(args) -> exit code`, and is listed here once. Their heavy imports stay inside
# main(), so `dgbench --help` stays fast.
COMMAND_MODULES = (
    "dgbench.cli_fit",
    "dgbench.cli_profile",
    "dgbench.cli_gate",
    "dgbench.cli_baseline",
    "dgbench.cli_lm_eval",
    "dgbench.cli_train",
    "dgbench.cli_report",
    "dgbench.cli_publish",
)


def _command_modules():
    import importlib

    return [importlib.import_module(name) for name in COMMAND_MODULES]


def main(argv: list[str] | None = None) -> int:
    # Every command runs inside the one error boundary (dgbench/boundary.py): bad input is one line and
    # exit 2, a bug is "internal error, please report" with the traceback saved; --debug shows tracebacks.
    from dgbench.boundary import guarded

    argv = list(sys.argv[1:] if argv is None else argv)
    return guarded(lambda: _dispatch([a for a in argv if a != "--debug"]), argv)


def _dispatch(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if args.command == "run":
        from dgbench.cli_run import cmd_run

        return cmd_run(args)
    if args.command == "list":
        from dgbench.cli_list import cmd_list

        return cmd_list(args.what)
    for module in _command_modules():
        if args.command == module.NAME:
            return module.main(args)
    return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
