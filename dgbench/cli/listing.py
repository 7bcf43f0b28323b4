"""`dgbench list suites|models|engines|tasks|profiles`."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

NAME = "list"

LIST_EPILOG = """\
examples:
  dgbench list suites      # built-in suites and ./suites/*.yaml
  dgbench list models      # model specs: family, paradigm, parameters, canvas length, source
  dgbench list engines     # decoding engines and their knobs (what a suite's `knobs:` may set)
  dgbench list profiles    # hardware profiles (peak FLOP/s, bandwidth, with sources)
  dgbench list tasks       # quality tasks
"""


def add_parser(sub, formatter) -> None:
    lst = sub.add_parser("list", help="list suites, models, engines, tasks or hardware profiles",
                         formatter_class=formatter, epilog=LIST_EPILOG,
                         description="List what dgbench knows about.")
    lst.add_argument("what", choices=["suites", "models", "engines", "tasks", "profiles"])


def _table(title: str, columns: list[str], rows: list[list[str]]) -> Table:
    table = Table(title=title)
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*[str(x) for x in r])
    return table


def cmd_list(what: str) -> int:
    import sys

    console = Console(width=None if sys.stdout.isatty() else 180)
    if what == "suites":
        from dgbench.harness.suite import available_suites, parse_yaml

        rows = []
        for name, path in available_suites().items():
            data, _ = parse_yaml(path)
            rows.append([name, data.get("scenario", "latency"), data.get("description", ""), str(path)])
        console.print(_table("suites (dgbench run --suite NAME)", ["name", "scenario", "description", "file"], rows))
    elif what == "models":
        from dgbench.models.params import formula, human
        from dgbench.models.registry import SPECS

        def counted(value: int, advertised: float | None) -> str:
            # Computed from the config (dgbench.models.params), with the model card's figure beside it.
            return human(value) + (f" (card {human(advertised)})" if advertised else "")

        rows, sources = [], []
        for i, s in enumerate(SPECS.values(), 1):
            counts = formula(s)
            rows.append([s.name, s.family, s.paradigm, counted(counts.total, s.total_params_advertised),
                         counted(counts.active, s.active_params_advertised), s.text_config["num_hidden_layers"],
                         s.canvas_length or "-", s.weights + (f"\n(checkpoint {s.checkpoint})" if s.checkpoint else ""),
                         f"[{i}]"])
            sources.append(f"[{i}] {s.name}: {s.source}")
        # The sources are paragraphs (every number's origin): printed in full under the table, not squeezed
        # into a column.
        console.print(_table("models (parameters: total and active per token, embeddings included, tied ones once)",
                             ["name", "family", "paradigm", "total", "active", "layers", "canvas", "weights",
                              "source"], rows))
        for line in sources:
            console.print(line, highlight=False)
    elif what == "engines":
        from dgbench.backends import ENGINES

        rows = []
        for e in ENGINES.values():
            knobs = "\n".join(f"{k}={v.default!r}: {v.help}" for k, v in e.knobs.items())
            rows.append([e.name, e.paradigm, e.description, knobs])
        console.print(_table("decoding engines (a suite decoder's `engine:`, knobs with defaults)",
                             ["engine", "paradigm", "description", "knobs"], rows))
    elif what == "profiles":
        from dgbench.hardware.profiles import load_profiles

        rows = []
        for name, p in load_profiles().items():
            peaks = ", ".join(f"{k} {v / 1e12:g}" for k, v in (p.get("peak_flops") or {}).items() if v is not None)
            bw = p.get("memory_bandwidth_bytes_s")
            rows.append([name, p.get("kind"), peaks or "measured on demand", f"{bw / 1e12:g}" if bw else "-",
                         p.get("file")])
        console.print(_table("hardware profiles", ["name", "kind", "peak TFLOP/s (dense)", "bandwidth TB/s",
                                                   "file"], rows))
    elif what == "tasks":
        from dgbench.tasks import TASKS

        console.print(_table("tasks (a suite's tasks: {NAME: {...}}, scenario: quality)", ["name", "description"],
                             [[t.name, t.description] for t in TASKS.values()]))
    return 0


def main(args) -> int:
    return cmd_list(args.what)
