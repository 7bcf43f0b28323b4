"""`dgbench run`: load and validate the suite, show progress, store results, print the summary."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

from rich.console import Console
from dgbench.textsafe import markup as escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from dgbench.errors import ConfigError
from dgbench.harness.suite import load_suite
from dgbench.results import RunStore


def _console(stderr: bool = False) -> Console:
    # Tables stay readable when piped (CI logs): a wide fixed width instead of 80 columns.
    stream = sys.stderr if stderr else sys.stdout
    return Console(file=stream, width=None if stream.isatty() else 180)


def _load(args) -> tuple[dict, Path | None]:
    limit = getattr(args, "limit", None)
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit {limit}: give a positive number of items per task")
    suite, resume = _load_suite(args)
    if limit is not None:
        if suite["scenario"] != "quality":
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


def cost_estimate(point) -> dict:
    """Forward passes and token positions one call costs: an upper bound for diffusion (every canvas
    runs to its step cap; adaptive stopping can only cut it)."""
    from dgbench.models.registry import get

    spec = get(point.model)
    b, p, g = point.batch_size, point.prompt_length, point.gen_length
    if spec.paradigm == "diffusion" and point.engine == "dgbench-masked":
        # Masked diffusion: `steps` passes over the whole sequence (LLaDA's default: one per answer token;
        # Fast-dLLM's threshold can only cut it), no KV cache in the default mode.
        passes = point.knobs.get("steps") or g
        positions = b * passes * (p + g)
    elif spec.paradigm == "diffusion":
        canvas = point.knobs.get("canvas_length") or spec.canvas_length
        canvases = math.ceil(g / canvas)
        steps = point.knobs.get("max_denoising_steps", 48)
        passes = canvases * steps
        positions = b * (p + canvases * canvas + passes * canvas)  # encoder + denoiser positions
    else:
        passes = g
        positions = b * (p + g)
    return {"passes": passes, "positions": positions}


def print_dry_run(suite: dict, console: Console) -> None:
    from dgbench.harness.sweep import expand

    points = expand(suite)
    m = suite["measure"]
    quality = suite["scenario"] == "quality"
    if quality:
        def calls_of(pt):  # warmup + one call per item
            n = pt.task_config["n"] if pt.limit is None else min(pt.task_config["n"], pt.limit)
            return m["warmup"] + n
        title = (f"suite {suite['name']}: {len(points)} points (decoder x task), {m['warmup']} warmup call + one "
                 f"call per item each (prompt tokens not counted)")
    else:
        calls = m["warmup"] + m["min_repetitions"] + (1 if m["memory"] else 0)
        calls_of = lambda pt: calls  # noqa: E731
        title = (f"suite {suite['name']}: {len(points)} points, {calls} calls each at least "
                 f"({m['warmup']} warmup + {m['min_repetitions']} timed + {int(m['memory'])} memory)")
    table = Table(title=escape(title))
    for col in ("point id", "decoder", "model", "params", "passes/call", "token positions/call"):
        table.add_column(col, justify="right" if "call" in col else "left")
    total_passes = total_pos = 0
    for pt in points:
        c = cost_estimate(pt)
        total_passes += c["passes"] * calls_of(pt)
        total_pos += c["positions"] * calls_of(pt)
        params = " ".join(f"{k}={v}" for k, v in pt.params.items())
        table.add_row(*[escape(x) for x in (pt.point_id, pt.decoder, pt.model, params, str(c["passes"]),
                                             str(c["positions"]))])
    console.print(table)
    console.print(f"cost at least: {total_passes} forward passes, {total_pos} token positions "
                  f"(diffusion counted at its step cap; "
                  + ("calls stop at EOS, so fewer may run" if quality else
                     f"more repetitions run until min_time_s={m['min_time_s']} s per point")
                  + "). Nothing was run.")


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


def cmd_run(args) -> int:
    from dgbench.cli import EXIT_INTERRUPTED, EXIT_OK, EXIT_POINTS_FAILED, EXIT_TERMINATED
    from dgbench.results import ensure_writable_dir

    suite, resume = _load(args)
    out = _console()
    for warning in suite.get("lint_warnings", []):
        out.print(f"[yellow]warning:[/] {escape(warning)}")
    if args.dry_run:
        print_dry_run(suite, out)
        return EXIT_OK

    gate_against = getattr(args, "gate_against", None)
    if gate_against:  # a missing baseline fails now, not after minutes of measuring
        from dgbench.gate_baselines import baselines_dir, resolve_baseline

        resolve_baseline(gate_against, baselines_dir())

    from dgbench.hardware.detect import resolve_device
    from dgbench.harness.runner import run_suite
    from dgbench.report.console import definitions_footer, quality_footer, quality_table, summary_table

    # Where results go must take a file now, not after minutes of loading and measuring.
    if resume is not None:
        ensure_writable_dir(resume, "--resume")
    else:
        ensure_writable_dir(Path(args.out), "--out")
    device_arg = args.device
    if resume is not None and device_arg == "auto":
        device_arg = (RunStore(resume).read_meta().get("hardware") or {}).get("device") or "auto"
    device = resolve_device(device_arg)
    err = _console(stderr=True)
    from dgbench.harness import tested_set

    untested = tested_set.describe(tested_set.differences(tested_set.installed()))
    if untested:  # said before measuring: every number of this run carries it (run.json and the report too)
        out.print(f"[yellow]warning:[/] {escape(untested)}")
    progress, report = _progress_ui(err)
    started = time.time()
    with progress:
        outcome = run_suite(suite, device=device, out_root=Path(args.out), resume=resume, progress=report,
                            profile=getattr(args, "profile", None),
                            emulate_memory=getattr(args, "emulate_memory", None))
    elapsed = time.time() - started

    if suite["scenario"] == "quality":
        from dgbench.harness.runner import decoder_weights

        out.print(quality_table(outcome.points, title=f"dgbench {suite['name']} on {device} "
                                                      f"(weights: {decoder_weights(suite)})"))
        out.print(quality_footer(outcome.points))
    else:
        out.print(summary_table(outcome.points, title=f"dgbench {suite['name']} on {device} "
                                                      f"(weights: synthetic)"))
        out.print(definitions_footer(outcome.points))
    ok = sum(p.get("status") == "ok" for p in outcome.points)
    out.print(escape(f"{ok} points ok, {outcome.failed} failed, {outcome.skipped} already done; {elapsed:.1f} s. "
                     f"Results: {outcome.run_dir}"))
    if outcome.interrupted:
        print(f"dgbench: interrupted ({outcome.stopped_by}); finished points are saved. Resume with: "
              f"dgbench run --resume {outcome.run_dir}", file=sys.stderr)
        return EXIT_TERMINATED if outcome.stopped_by == "SIGTERM" else EXIT_INTERRUPTED
    if gate_against:
        from dgbench.cli_gate import gate_run

        run_dir = Path(outcome.run_dir)
        gate_exit = gate_run(gate_against, run_dir, markdown=str(run_dir / "gate.md"),
                             junit=str(run_dir / "gate.xml"), json_path=str(run_dir / "gate.json"))
        return max(gate_exit, EXIT_POINTS_FAILED if outcome.failed else EXIT_OK)
    return EXIT_POINTS_FAILED if outcome.failed else EXIT_OK

