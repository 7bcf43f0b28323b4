"""The `dgbench` command. Bad input ends in one line on stderr and exit code 2, never a traceback.

Every command is one module in this package exposing `NAME`, `add_parser(sub, formatter)` and
`main(args) -> exit code`, and is listed once in COMMAND_MODULES. Their heavy imports stay inside
main(), so `dgbench --help` stays fast. Exit codes live in dgbench.errors.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from dgbench.errors import EXIT_INTERRUPTED, EXIT_USAGE, DgbenchError

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
)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors: one line, exit 2
        self.print_usage(sys.stderr)
        print(f"dgbench: error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def command_modules():
    return [importlib.import_module(name) for name in COMMAND_MODULES]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dgbench", formatter_class=_Formatter,
                     description="Benchmark diffusion against autoregressive decoding: speed, quality, telemetry.",
                     epilog="Start with:  dgbench run --suite smoke   (then `dgbench run --help`)")
    from dgbench import __version__

    parser.add_argument("--version", action="version", version=f"dgbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in command_modules():
        module.add_parser(sub, _Formatter)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        for module in command_modules():
            if args.command == module.NAME:
                return module.main(args)
    except DgbenchError as e:
        print(f"dgbench: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("dgbench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_USAGE
