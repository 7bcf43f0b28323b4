"""Measure baseline and candidate in one job, interleaved, so machine drift hits both alike.

Each side is a checkout (a git worktree built for a ref, or a folder) measured by a long-lived worker
process: the same Python (the same venv) started inside that checkout with the checkout first on
sys.path, so `import dgbench` there imports that checkout's code. A worker measures a block (the
suite's points, k timed repetitions each) with that checkout's own measuring code, keeping the models
loaded between blocks; a checkout whose internals differ falls back to its own `dgbench run` per block
(`dgbench.cli.main`, stable across versions). Keeping each worker alive pays torch's import once.

Schedules. alternate (default): one side at a time, A B B A A B ... (who goes first swaps, cancelling a
linear drift inside a pair), both sides' workers pinned to one CPU (resolve_pin), so a pair of blocks runs
on the same core within a fraction of a second. concurrent: every side measures block i at the same time,
so all see the same instantaneous load, but on different cores, and on this 2-core VM the two cores'
speeds wander independently. Measured here (benchmarks/gate_error_rates.py, smoke's AR row, 2026-12-02):
concurrent 8 x 3 left a minimum detectable effect (MDE) of +-16-22% on committed tok/s at load ~28 and
+-37-50% on a quiet machine; alternate on one CPU, 24 x 8: +-11-20%; alternate on one CPU, 96 x 2 (the
default): about +-4%, at about 45 s per measurement of that row.

The block runs are merged into one run directory per side whose points carry `rep_blocks` (the block
sizes per metric) and an `interleave_id` shared by both sides; dgbench.gate.rules then pairs block i of
the baseline with block i of the candidate (see dgbench.gate.family).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from dgbench.errors import ConfigError, ResultsError
from dgbench.results import POINTS_FILE, RUN_FILE
from dgbench.stats import summarize

# Run inside the checkout by `python -c`: this text must keep working against any dgbench version that
# has `dgbench.cli.main(argv) -> int`, so it uses nothing else of dgbench.
WORKER_CODE = r"""
import json, os, sys
checkout = sys.argv[1]
sys.path.insert(0, checkout)
os.chdir(checkout)
replies = os.fdopen(os.dup(1), "w")
os.dup2(os.open(os.devnull, os.O_WRONLY), 1)   # the runs' console tables go nowhere; replies stay on the pipe
import dgbench
from dgbench.cli import main
replies.write(json.dumps({"ready": os.path.abspath(dgbench.__file__)}) + "\n"); replies.flush()
STATE, CACHE = {}, []

def fast_block(req):
    # The checkout's own measuring code with the model kept loaded between blocks: a block then costs its
    # repetitions only. Internal names: any version without them falls back to `dgbench run` per block.
    from dgbench.hardware.detect import fingerprint, resolve_device, resolve_dtype
    from dgbench.harness import runner
    from dgbench.harness.suite import load_suite
    from dgbench.harness.sweep import expand
    from dgbench.models.cache import ModelCache
    from dgbench.models.registry import get
    from dgbench.scenarios import MeasureContext, for_point
    try:
        from dgbench.harness.point import _measure   # since the Ray executor (#21)
    except ImportError:
        _measure = runner._measure                   # the #15 layout
    key = json.dumps([req["suite"], req["sets"]])
    if key not in STATE:
        suite = load_suite(req["suite"], req["sets"])
        device = resolve_device("auto")
        meta = runner.run_metadata(suite, device, suite["seed"], fingerprint(device), None, "completed",
                                   runner.decoder_weights(suite))
        STATE[key] = (suite, device, meta, expand(suite))
    if not CACHE:
        CACHE.append(ModelCache())
    suite, device, meta, points = STATE[key]
    measure = {**suite["measure"], "min_repetitions": req["reps"], "max_repetitions": req["reps"],
               "min_time_s": 0, "memory": False}
    ctx = MeasureContext(device, measure, suite["seed"], None, lambda *a, **k: None, None)
    records = [_measure(p, for_point(p), ctx, CACHE[0], resolve_dtype(p.dtype, device), get(p.model))
               for p in points]
    from dgbench.results import RunStore
    store = RunStore(__import__("pathlib").Path(req["out"]) / "run")   # the checkout's own results format
    store.create(meta)
    for r in records:
        store.append_point(r)
    store.close()
    return 0 if all(r.get("status") == "ok" for r in records) else 1

for line in sys.stdin:
    req = json.loads(line)
    path = "cli"
    try:
        if req.get("fast"):
            try:
                rc, path = fast_block(req), "fast"
            except (ImportError, AttributeError, TypeError, KeyError) as e:
                print(f"worker: fast path unavailable ({type(e).__name__}: {e}); using dgbench run", file=sys.stderr)
                req["fast"] = False
        if path == "cli":
            rc = main(req["argv"])
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else 2
    except BaseException as e:
        print(f"worker: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        rc = 70
    sys.stderr.flush()
    replies.write(json.dumps({"rc": rc, "path": path}) + "\n"); replies.flush()
"""

# Interleaved mode defaults: many short blocks, one side at a time, both sides on one CPU. On this 2-core
# machine a repetition's speed wanders +-15% within a second (the host's other tenants), so a long block
# pairs poorly; 96 blocks of 2 left a minimum detectable effect of about +-4% on smoke's AR row where 24
# blocks of 8 left +-11-20% at the same cost (benchmarks/gate_error_rates.py, whose docstring has the rates).
DEFAULT_BLOCKS = 96
DEFAULT_BLOCK_REPS = 2
DEFAULT_PROCESSES = 1
DEFAULT_SCHEDULE = "alternate"


@dataclass
class Side:
    role: str                   # "baseline" | "candidate"
    checkout: Path
    extra_sets: list[str] = field(default_factory=list)   # --set overrides for this side only
    label: str = ""             # the ref it was built from, or the folder


class Worker:
    """One side's process; `run(argv)` runs `dgbench run ...` in it and returns the exit code."""

    def __init__(self, side: Side, python: str, log_path: Path, env: dict | None = None):
        self.side = side
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "w", encoding="utf-8")
        self.proc = subprocess.Popen([python, "-c", WORKER_CODE, str(side.checkout)], cwd=side.checkout,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True,
                                     env=env, start_new_session=True)
        # A session of its own: with the kernel's autogroup scheduling (sched_autogroup_enabled) every
        # session shares the CPU as one group, so each side then gets the same share as any other job
        # instead of splitting one share with the coordinator and the other sides. The worker ends when
        # its stdin closes (the coordinator closing it, or dying).

    def wait_ready(self) -> None:
        side = self.side
        ready = self._reply()
        imported = Path(ready.get("ready", "")).resolve()
        if side.checkout.resolve() not in imported.parents:
            self.close()
            raise ConfigError(f"{side.role} checkout {side.checkout}: its worker imported dgbench from {imported}, "
                              "not from the checkout; unset PYTHONPATH or install dgbench non-editable")

    def _reply(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self._log.flush()
            tail = self.log_path.read_text(encoding="utf-8", errors="replace")[-1500:]
            raise ResultsError(f"the {self.side.role} worker ({self.side.checkout}) exited "
                               f"(code {self.proc.poll()}): {tail.strip().splitlines()[-1] if tail.strip() else ''}"
                               f" (log: {self.log_path})")
        return json.loads(line)

    def send(self, request: dict) -> None:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()

    def receive(self) -> dict:
        return self._reply()

    def run(self, argv: list[str]) -> int:
        self.send({"argv": argv})
        return int(self.receive()["rc"])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


SCHEDULES = ("concurrent", "alternate")


def resolve_pin(value: str | int | None, schedule: str) -> int | None:
    """The one CPU both sides' workers are pinned to, or None. "auto": the last CPU this process may use,
    for the alternate schedule only (one side runs at a time, so both then run on the same core, its cache
    and its share of the host; concurrent sides would only queue behind each other there); "none": no pin."""
    if value is None or value == "none":
        return None
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if value == "auto":
        return allowed[-1] if allowed and schedule == "alternate" else None
    try:
        cpu = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"--pin-cpu {value!r}: give auto, none or a CPU number") from None
    if not allowed:
        raise ConfigError(f"--pin-cpu {cpu}: this platform cannot pin processes to a CPU; use --pin-cpu none")
    if cpu not in allowed:
        raise ConfigError(f"--pin-cpu {cpu}: not a CPU this process may use ({', '.join(map(str, allowed))}); "
                          "give one of those, auto or none")
    return cpu


def block_order(blocks: int, sides: int = 2, schedule: str = "concurrent") -> list[list[tuple[int, int]]]:
    """Steps of (block index, side index); the sides of one step run at the same time.

    concurrent: every side measures block i at once, so all see the same instantaneous load;
    alternate: one side at a time, A B B A A B ... (the second side of a pair goes first next time)."""
    if schedule == "concurrent":
        return [[(i, s) for s in range(sides)] for i in range(blocks)]
    out = []
    for i in range(blocks):
        order = list(range(sides)) if i % 2 == 0 else list(reversed(range(sides)))
        out += [[(i, s)] for s in order]
    return out


def suite_argument(suite: str) -> str:
    """A suite path is made absolute (the same file for both sides); a name is resolved by each checkout."""
    from dgbench.validation import suite_file

    path = suite_file(suite)
    return str(path.resolve()) if path is not None else suite


def start_workers(sides: tuple[Side, Side], log_dir: Path, python: str | None = None,
                  cpu: int | None = None) -> list[Worker]:
    """Both sides' workers, started at once (torch's import is paid in parallel) and ready. `cpu`: every
    worker pinned to that one CPU (sched_setaffinity, inherited by the threads it starts)."""
    env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    env.pop("PYTHONPATH", None)   # each worker must import its own checkout, not whatever PYTHONPATH names
    workers = []
    try:
        for side in sides:
            workers.append(Worker(side, python or sys.executable, log_dir / f"{side.role}.log", env))
            if cpu is not None:
                os.sched_setaffinity(workers[-1].proc.pid, {cpu})
        for w in workers:
            w.wait_ready()
    except BaseException:
        for w in workers:
            w.close()
        raise
    return workers


def measure_interleaved(suite: str, sides: tuple[Side, ...], out_dir: Path, blocks: int = DEFAULT_BLOCKS,
                        block_reps: int = DEFAULT_BLOCK_REPS, sets: list[str] | None = None,
                        python: str | None = None, progress=None, tag: str = "",
                        workers: list[Worker] | None = None, schedule: str = DEFAULT_SCHEDULE,
                        processes: int = 1, cpu: int | None = None) -> tuple[Path, ...]:
    """Measure the sides interleaved (side 0 the baseline); returns one merged run directory per side.
    `workers` (from start_workers) are reused and left running; otherwise they are started and closed.
    processes > 1: the blocks are split into that many consecutive groups, each measured by a fresh pair of
    worker processes, and the merged runs record each block's process pair (`block_process`), which the
    paired test then takes as its unit (dgbench.gate.family.process_means). `cpu`: the CPU every worker is
    pinned to (resolve_pin), None for no pin."""
    if blocks < 2:
        raise ConfigError(f"--blocks {blocks}: the paired test needs at least 2 blocks ({DEFAULT_BLOCKS} is the "
                          "default)")
    if block_reps < 1:
        raise ConfigError(f"--block-reps {block_reps}: at least 1 repetition per block")
    if schedule not in SCHEDULES:
        raise ConfigError(f"--schedule {schedule!r}: choose one of {', '.join(SCHEDULES)}")
    if processes < 1 or processes > blocks or (processes > 1 and workers is not None):
        raise ConfigError(f"--processes {processes}: give 1..--blocks ({blocks}) process pairs"
                          + (" (reused workers measure as one pair)" if workers is not None else ""))
    suite = suite_argument(suite)
    out_dir = Path(out_dir)
    interleave_id = uuid.uuid4().hex[:12]
    base_sets = list(sets or []) + [f"measure.min_repetitions={block_reps}", f"measure.max_repetitions={block_reps}",
                                    "measure.min_time_s=0", "measure.memory=false", "telemetry.enabled=false"]
    own = workers is None
    group_of = [i * processes // blocks for i in range(blocks)]      # block -> its process pair, consecutive
    if own:
        workers = start_workers(sides, _log_dir(out_dir, tag, 0, processes), python, cpu)
    try:
        runs: list[list[Path]] = [[] for _ in sides]
        started = time.time()
        current = 0
        for step in block_order(blocks, len(sides), schedule):
            pair = group_of[step[0][0]]     # the steps of one block are consecutive, groups too
            if own and pair != current:
                for w in workers:
                    w.close()
                workers = start_workers(sides, _log_dir(out_dir, tag, pair, processes), python, cpu)
                current = pair
            for i, s in step:
                side = sides[s]
                block_dir = out_dir / "blocks" / f"{tag}{side.role}-{i:03d}"
                shutil.rmtree(block_dir, ignore_errors=True)
                block_dir.mkdir(parents=True)
                all_sets = base_sets + side.extra_sets
                workers[s].send({"fast": True, "suite": suite, "sets": all_sets, "reps": block_reps,
                                 "out": str(block_dir),
                                 "argv": ["run", "--suite", suite, *[x for e in all_sets for x in ("--set", e)],
                                          "--out", str(block_dir)]})
            for i, s in step:
                side = sides[s]
                rc = int(workers[s].receive()["rc"])
                block_dir = out_dir / "blocks" / f"{tag}{side.role}-{i:03d}"
                run_dir = _only_run(block_dir)
                if rc not in (0, 1) or run_dir is None:
                    raise ResultsError(f"{side.role} block {i + 1} ({side.label or side.checkout}): measuring "
                                       f"exited {rc}; see {workers[s].log_path}")
                runs[s].append(run_dir)
            if progress:
                progress(f"{tag}block {step[0][0] + 1}/{blocks} of {', '.join(sides[s].role for _, s in step)} "
                         f"done ({time.time() - started:.0f} s)")
    finally:
        if own:
            for w in workers:
                w.close()
    return tuple(merge_blocks(runs[s], out_dir / f"{tag}{sides[s].role}", interleave_id, sides[s],
                              group_of if processes > 1 else None)
                 for s in range(len(sides)))


def _only_run(block_dir: Path) -> Path | None:
    found = [d for d in block_dir.iterdir() if (d / RUN_FILE).is_file()] if block_dir.is_dir() else []
    return found[0] if len(found) == 1 else None


def _log_dir(out_dir: Path, tag: str, pair: int, processes: int) -> Path:
    return out_dir / "logs" if processes == 1 else out_dir / "logs" / f"{tag}pair-{pair:03d}"


def merge_blocks(run_dirs: list[Path], target: Path, interleave_id: str, side: Side,
                 block_process: list[int] | None = None) -> Path:
    """One run directory from a side's block runs: repetitions concatenated in block order, `rep_blocks`
    recording each block's size per metric, `block_process` (when several process pairs measured) each
    block's pair, summaries recomputed over all repetitions."""
    meta = json.loads((run_dirs[0] / RUN_FILE).read_text(encoding="utf-8"))
    merged: dict[str, dict] = {}
    for run_dir in run_dirs:
        for line in (run_dir / POINTS_FILE).read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            p = json.loads(line)
            pid = p.get("point_id")
            if pid not in merged:
                merged[pid] = {**p, "reps": {}, "rep_blocks": {}, "pooled": {}, "interleave_id": interleave_id,
                               **({"block_process": list(block_process)} if block_process else {})}
            m = merged[pid]
            if p.get("status") != "ok":
                m["status"], m["error"] = p.get("status"), p.get("error")
            for metric, values in (p.get("reps") or {}).items():
                m["reps"].setdefault(metric, []).extend(values)
                m["rep_blocks"].setdefault(metric, []).append(len(values))
            for metric, values in (p.get("pooled") or {}).items():
                m["pooled"].setdefault(metric, []).extend(values or [])
    for m in merged.values():
        m["summary"] = {k: summarize([v for v in vals if v is not None])
                        for k, vals in {**m["reps"], **m["pooled"]}.items() if any(v is not None for v in vals)}
    meta["status"] = "completed" if all(m.get("status") == "ok" for m in merged.values()) \
        else "completed_with_failures"
    meta["interleaved"] = {"id": interleave_id, "role": side.role, "blocks": len(run_dirs),
                           "source": side.label or str(side.checkout), "extra_sets": side.extra_sets,
                           "block_runs": [str(d) for d in run_dirs]}
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    (target / RUN_FILE).write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
    (target / POINTS_FILE).write_text("".join(json.dumps(m, default=str) + "\n" for m in merged.values()),
                                      encoding="utf-8")
    return target


def build_worktree(repo: Path, ref: str, where: Path) -> Path:
    """A detached git worktree of `ref` (a commit, branch or tag of the repository at `repo`)."""
    try:
        sha = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", f"{ref}^{{commit}}"],
                             capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as e:
        why = " ".join(str(getattr(e, "stderr", "") or e).split())
        raise ConfigError(f"--baseline-ref/--candidate-ref {ref!r}: not a commit of the git repository at {repo} "
                          f"({why}); give a commit, branch or tag, or a folder with --baseline-dir") from None
    if where.exists():
        subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(where)], capture_output=True)
        shutil.rmtree(where, ignore_errors=True)
    done = subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(where), sha],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise ConfigError(f"git worktree add {where} {sha}: {' '.join(done.stderr.split())}")
    return where


def remove_worktree(repo: Path, where: Path) -> None:
    subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(where)], capture_output=True)
    shutil.rmtree(where, ignore_errors=True)
