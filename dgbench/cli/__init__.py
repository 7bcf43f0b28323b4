"""The `dgbench` command. Bad input ends in one line on stderr and exit code 2, never a traceback.

Every command is one module in this package exposing `NAME`, `add_parser(sub, formatter)` and
`main(args) -> exit code`, and is listed once in COMMAND_MODULES. Their heavy imports stay inside
main(), so `dgbench --help` stays fast. Exit codes live in dgbench.errors.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from dgbench.errors import EXIT_USAGE

# Order is the order of `dgbench --help`.
COMMAND_MODULES = (
    "dgbench.cli.run",
    "dgbench.cli.listing",
    "dgbench.cli.fit",
    "dgbench.cli.profile",
    "dgbench.cli.gate",
    "dgbench.cli.baseline",
    "dgbench.cli.lm_eval",
    "dgbench.cli.train",
    "dgbench.cli.report",
    "dgbench.cli.publish",
    "dgbench.cli.merge",
    "dgbench.cli.serve",
    "dgbench.cli.export",
)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors: one line (the usage is one --help away), exit 2
        from dgbench.textsafe import one_line

        print(f"dgbench: error: {one_line(message)} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def command_modules():
    return [importlib.import_module(name) for name in COMMAND_MODULES]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dgbench", formatter_class=_Formatter,
                     description="Benchmark diffusion against autoregressive decoding: speed, quality, telemetry.",
                     epilog="Start with:  dgbench run --suite smoke   (then `dgbench run --help`)")
    from dgbench import __version__

    parser.add_argument("--version", action="version", version=f"dgbench {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of any error (also DGBENCH_DEBUG=1); may follow the command too")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in command_modules():
        module.add_parser(sub, _Formatter)
    return parser


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
    for module in command_modules():
        if args.command == module.NAME:
            return module.main(args)
    return EXIT_USAGE
