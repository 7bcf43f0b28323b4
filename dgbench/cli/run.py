"""`dgbench run`: load and validate the suite, show progress, store results, print the summary."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from dgbench.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_POINTS_FAILED, EXIT_TERMINATED, ConfigError
from dgbench.harness.cost import cost_estimate
from dgbench.harness.shard import parse_shard
from dgbench.harness.suite import load_suite
from dgbench.results import RunStore
from dgbench.textsafe import markup as escape

NAME = "run"

RUN_EPILOG = """\
examples:
  dgbench run --suite smoke                       # tiny models, under a minute on a laptop CPU
  dgbench run --suite latency --device cuda       # batch-1 latency, diffusion vs autoregressive
  dgbench run --suite throughput --set sweep.batch_size=[1,8] --set measure.min_repetitions=5
  dgbench run --suite my_suite.yaml --dry-run     # show the expanded sweep and its cost, run nothing
  dgbench run --resume results/20261122T070000Z-latency   # finish an interrupted run
  dgbench run --suite quality --limit 20          # sudoku, multiple choice, code infill: accuracy + speed
  dgbench run --suite throughput --executor ray --set executor.address=auto   # points on a Ray cluster
  dgbench run --suite throughput --shard 2/4 --out shards   # one job of a 4-way job array; then dgbench merge

exit codes: 0 all points measured (and, with --gate-against, the gate passed),
            1 some points failed (recorded in points.jsonl) or the gate found a regression,
            2 bad input (suite, flag, path, baseline), 130 interrupted (resume with --resume RUN_DIR)
"""


def add_parser(sub, formatter) -> None:
    run = sub.add_parser("run", help="run a suite and store its results", formatter_class=formatter,
                         description="Run a benchmark suite: every sweep point is measured (warmup, then "
                                     "repetitions) and stored in RUN_DIR/points.jsonl as soon as it is done.",
                         epilog=RUN_EPILOG)
    run.add_argument("--suite", metavar="NAME|PATH", help="a built-in suite name or a suite YAML file")
    run.add_argument("--out", metavar="DIR", default="results",
                     help="folder under which the run directory <UTC time>-<suite> is created (default: results)")
    run.add_argument("--device", default="auto", metavar="auto|cpu|cuda[:N]",
                     help="where to run (default: auto = cuda:0 if visible, else cpu)")
    run.add_argument("--seed", type=int, help="override the suite's seed (prompts and sampling)")
    run.add_argument("--seeds", type=int, metavar="N",
                     help="repeat stochastic decoders over N sampling seeds (seed, seed+1, ...): per-seed results "
                          "and mean +- between-seed spread (same as the suite's seeds: [...])")
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
    run.add_argument("--executor", choices=["local", "ray"],
                     help="where points run: local (this process, the default) or ray (a Ray cluster's free "
                          "CPUs/GPUs; suite field executor: {address, gpus_per_point, cpus_per_point})")
    run.add_argument("--shard", metavar="I/N",
                     help="run only shard I of N (a deterministic, cost-balanced Nth of the points; "
                          "combine the shard directories with `dgbench merge`)")
    run.add_argument("--gate-against", metavar="RUN_DIR|FILE|NAME",
                     help="after the run, gate it against this baseline (see `dgbench gate --help`); writes "
                          "RUN_DIR/gate.md, gate.xml, gate.json; exit 1 on a regression")


def _console(stderr: bool = False) -> Console:
    # Tables stay readable when piped (CI logs): a wide fixed width instead of 80 columns (200: the latency
    # table with its steps-per-canvas column fits without wrapping a cell).
    stream = sys.stderr if stderr else sys.stdout
    return Console(file=stream, width=None if stream.isatty() else 200)


def _load(args) -> tuple[dict, Path | None]:
    limit = getattr(args, "limit", None)
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit {limit}: give a positive number of items per task")
    suite, resume = _load_suite(args)
    n_seeds = getattr(args, "seeds", None)
    if n_seeds is not None:
        if n_seeds < 1:
            raise ConfigError(f"--seeds {n_seeds}: give a positive number of sampling seeds")
        suite["seeds"] = [suite["seed"] + i for i in range(n_seeds)]   # the suite's seed and the next N - 1
    if limit is not None:
        from dgbench.scenarios import for_suite

        if not for_suite(suite).runs_tasks:
            raise ConfigError(f"--limit applies to quality suites (scenario: quality); suite {suite['name']!r} "
                              f"is {suite['scenario']}")
        suite["limit"] = limit
    elif resume is not None and "limit" not in suite:
        # Resuming a --limit run without repeating --limit (or with --set) keeps the run's limit.
        previous = RunStore(resume).read_meta()["suite"].get("limit")
        if previous is not None:
            suite["limit"] = previous
    return suite, resume


def _load_suite(args) -> tuple[dict, Path | None]:
    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")

    if args.resume:
        from dgbench.results_schema import RESUMABLE, require

        resume = Path(args.resume)
        meta = RunStore(resume).read_meta()
        require(meta, RESUMABLE, str(RunStore(resume).run_file),
                "this run cannot be resumed (it was not written by `dgbench run`); start a new run")
        if args.suite is None and not overrides:
            return meta["suite"], resume
        source = args.suite or meta["suite"].get("source")
        if not source:
            raise ConfigError(f"{resume}: run.json does not name its suite file; give --suite with --set")
        return load_suite(source, overrides), resume
    if not args.suite:
        raise ConfigError("run needs --suite NAME|PATH (see `dgbench list suites`) or --resume RUN_DIR")
    return load_suite(args.suite, overrides), None


def _executor(args, suite: dict, resume: Path | None) -> dict:
    """The executor settings: --executor, else the suite's field; a resumed run keeps its executor kind."""
    from dgbench.harness.executors import executor_settings

    kind = getattr(args, "executor", None)
    if kind is None and resume is not None:
        kind = (RunStore(resume).read_meta().get("executor") or {}).get("kind")
    settings = executor_settings(suite, kind)
    if settings["kind"] == "ray":
        from dgbench.harness.executors import import_ray

        import_ray()   # a missing Ray fails here, before a run directory is created
        if args.device.startswith("cuda"):
            raise ConfigError(f"--device {args.device}: with the Ray executor Ray grants each worker its GPUs; "
                              "leave --device out and set executor.gpus_per_point (e.g. --set executor.gpus_per_point=1)")
        if args.device == "cpu" and settings["gpus_per_point"] is None:
            settings["gpus_per_point"] = 0.0
        if getattr(args, "emulate_memory", None):
            raise ConfigError("--emulate-memory caps this process's CUDA memory; it does not apply to Ray workers, "
                              "run without --executor ray")
    return settings


def print_dry_run(suite: dict, console: Console, shard: tuple[int, int] | None = None) -> None:
    from dgbench.harness.sweep import expand
    from dgbench.scenarios import for_suite

    points = expand(suite)
    scenario = for_suite(suite)
    if not scenario.loads_model:   # nothing to price in forward passes: the scenario says what it will send
        scenario.dry_run(suite, points, console)
        return
    if shard is not None:
        from dgbench.harness.shard import select_shard

        points = select_shard(points, shard[0], shard[1], suite["measure"])
    m = suite["measure"]
    title = scenario.dry_run_title(suite, len(points))
    if shard is not None:
        title = f"shard {shard[0]}/{shard[1]} of " + title
    table = Table(title=escape(title))
    for col in ("point id", "decoder", "model", "params", "passes/call", "token positions/call"):
        table.add_column(col, justify="right" if "call" in col else "left")
    total_passes = total_pos = 0
    for pt in points:
        c = cost_estimate(pt)
        total_passes += c["passes"] * scenario.calls(pt, m)
        total_pos += c["positions"] * scenario.calls(pt, m)
        params = " ".join(f"{k}={v}" for k, v in pt.params.items())
        table.add_row(*[escape(x) for x in (pt.point_id, pt.decoder, pt.model, params, str(c["passes"]),
                                             str(c["positions"]))])
    console.print(table)
    console.print(f"cost at least: {total_passes} forward passes, {total_pos} token positions "
                  f"(diffusion counted at its step cap; "
                  + scenario.dry_run_note(m) + "). Nothing was run.")


def _progress_ui(console: Console):
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("points"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                        console=console, transient=False)
    state = {"task": None}

    def report(point, index, total, what):
        if state["task"] is None:
            state["task"] = progress.add_task("measuring", total=total)
        task = state["task"]
        if what in ("ok", "failed", "skipped"):
            progress.update(task, completed=index + 1, description=escape(f"{point.label()} [{what}]"))
        else:
            progress.update(task, description=escape(f"{point.label()} ({what})"))
    return progress, report


def main(args) -> int:
    suite, resume = _load(args)
    out = _console()
    for warning in suite.get("lint_warnings", []):
        out.print(f"[yellow]warning:[/] {escape(warning)}")
    shard = parse_shard(args.shard) if getattr(args, "shard", None) else None
    if args.dry_run:
        print_dry_run(suite, out, shard)
        return EXIT_OK

    gate_against = getattr(args, "gate_against", None)
    if gate_against:  # a missing baseline fails now, not after minutes of measuring
        from dgbench.gate.baselines import baselines_dir, resolve_baseline

        resolve_baseline(gate_against, baselines_dir())

    from dgbench.hardware.detect import resolve_device
    from dgbench.harness.runner import decoder_weights, header_lines, run_suite
    from dgbench.scenarios import for_suite

    from dgbench.results import ensure_writable_dir

    # Where results go must take a file now, not after minutes of loading and measuring.
    ensure_writable_dir(resume, "--resume") if resume is not None else ensure_writable_dir(Path(args.out), "--out")
    executor = _executor(args, suite, resume)
    device_arg = args.device
    if resume is not None and device_arg == "auto":
        device_arg = (RunStore(resume).read_meta().get("hardware") or {}).get("device") or "auto"
    # On Ray the workers pick their devices (Ray grants each its GPUs); the driver only coordinates.
    device = "cpu" if executor["kind"] == "ray" else resolve_device(device_arg)
    err = _console(stderr=True)
    from dgbench import tested_set

    untested = tested_set.describe(tested_set.differences(tested_set.installed()))
    if untested:  # said before measuring: every number of this run carries it (run.json and the report too)
        out.print(f"[yellow]warning:[/] {escape(untested)}")
    for line in header_lines(suite):   # where each decoder's weights come from, before anything loads
        out.print(escape(line))
    progress, report = _progress_ui(err)
    started = time.time()
    with progress:
        outcome = run_suite(suite, device=device, out_root=Path(args.out), resume=resume, progress=report,
                            profile=getattr(args, "profile", None),
                            emulate_memory=getattr(args, "emulate_memory", None), executor=executor, shard=shard)
    elapsed = time.time() - started
    if executor["kind"] == "ray":
        device = "ray"

    scenario = for_suite(suite)
    weights = decoder_weights(suite)   # synthetic, embedded, checkpoint, or per model
    for renderable in scenario.console_summary(outcome.points, f"dgbench {suite['name']} on {device} "
                                                              f"(weights: {weights})"):
        out.print(renderable)
    from dgbench.report.console import answer_lines

    for line in answer_lines(suite, outcome.points):   # the answer: diffusion vs AR, equal accuracy, AUP, ...
        out.print(line, soft_wrap=True)
    ok = sum(p.get("status") == "ok" for p in outcome.points)
    out.print(f"{ok} points ok, {outcome.failed} failed, {outcome.skipped} already done; {elapsed:.1f} s. "
              f"Results: {outcome.run_dir}")
    if outcome.interrupted:
        print(f"dgbench: interrupted ({outcome.stopped_by}); finished points are saved. Resume with: "
              f"dgbench run --resume {outcome.run_dir}", file=sys.stderr)
        return EXIT_TERMINATED if outcome.stopped_by == "SIGTERM" else EXIT_INTERRUPTED
    if gate_against:
        from dgbench.cli.gate import gate_run

        run_dir = Path(outcome.run_dir)
        gate_exit = gate_run(gate_against, run_dir, markdown=str(run_dir / "gate.md"),
                             junit=str(run_dir / "gate.xml"), json_path=str(run_dir / "gate.json"))
        return max(gate_exit, EXIT_POINTS_FAILED if outcome.failed else EXIT_OK)
    return EXIT_POINTS_FAILED if outcome.failed else EXIT_OK

