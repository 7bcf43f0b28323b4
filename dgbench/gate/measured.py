"""`dgbench gate --measure`: build the checkouts, measure them interleaved, gate, and confirm before failing.

Confirmation: a timing regression found in the first measurement is measured again, interleaved with
fresh blocks (only the decoders with a flagged point, the whole sweep of those), and stays a regression
only if the second measurement flags the same point and metric too. Two independent flags are needed
to fail, so a false alarm needs two unlucky measurements in a row, while a real slowdown reproduces.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

from dgbench.gate.interleave import (DEFAULT_BLOCK_REPS, DEFAULT_BLOCKS, DEFAULT_SCHEDULE, Side, build_worktree,
                                     measure_interleaved, remove_worktree)
from dgbench.gate.rules import CANNOT_TELL, IMPROVEMENT, OK, REGRESSION, GateResult, compare_runs


@dataclass
class MeasureOptions:
    suite: str
    out_dir: Path
    blocks: int = DEFAULT_BLOCKS
    block_reps: int = DEFAULT_BLOCK_REPS
    sets: tuple[str, ...] = ()
    confirm: bool = True
    python: str | None = None
    schedule: str = DEFAULT_SCHEDULE
    processes: int = 1          # fresh worker pairs over the blocks; >1: the pair is the test's unit
    cpu: int | None = None      # the one CPU both sides' workers are pinned to (interleave.resolve_pin)


def dgbench_checkout() -> Path:
    """The checkout whose dgbench is running this command (the default candidate)."""
    import dgbench

    return Path(dgbench.__file__).resolve().parent.parent


def prepare_side(role: str, ref: str | None, folder: str | None, repo: Path, work: Path,
                 extra_sets: list[str]) -> tuple[Side, Path | None]:
    """(side, worktree to remove afterwards or None) for a ref (a git worktree is built) or a folder."""
    from dgbench.errors import ConfigError

    if ref and folder:
        raise ConfigError(f"--{role}-ref and --{role}-dir both given; choose one")
    if folder:
        path = Path(folder).resolve()
        if not (path / "dgbench" / "__init__.py").is_file():
            raise ConfigError(f"--{role}-dir {folder}: no dgbench package there (expected {path}/dgbench/__init__.py); "
                              "give the root of a dgbench checkout")
        return Side(role, path, extra_sets, label=str(path)), None
    if ref:
        where = build_worktree(repo, ref, work / f"{role}-worktree")
        return Side(role, where, extra_sets, label=ref), where
    return Side(role, dgbench_checkout(), extra_sets, label="this checkout"), None


def measure_and_gate(options: MeasureOptions, baseline: Side, candidate: Side, progress=None,
                     workers=None) -> GateResult:
    """Measure interleaved, gate, confirm flagged timing changes. `workers` (start_workers) are reused."""
    started = time.time()
    sides = (baseline, candidate)
    base_dir, cand_dir = measure_interleaved(options.suite, sides, options.out_dir, options.blocks,
                                             options.block_reps, list(options.sets), options.python, progress,
                                             workers=workers, schedule=options.schedule,
                                             processes=options.processes, cpu=options.cpu)
    result = compare_runs(base_dir, cand_dir)
    again = None
    if flagged_points(result) and options.confirm:
        again = compare_runs(*measure_interleaved(options.suite, sides, options.out_dir, options.blocks,
                                                  options.block_reps, confirmation_sets(options, sides, base_dir,
                                                                                        result),
                                                  options.python, progress, tag="confirm-", workers=workers,
                                                  schedule=options.schedule, processes=options.processes,
                                                  cpu=options.cpu))
    confirm(result, again, options)
    pairs = f", {options.processes} process pairs (the test's unit)" if options.processes > 1 else ""
    pinned = f", both sides on CPU {options.cpu}" if options.cpu is not None else ""
    result.notes.append(f"measured {options.schedule}{pinned}, interleaved: {options.blocks} blocks x {options.block_reps} "
                        f"repetitions a side{pairs}{', plus the confirmation' if again else ''}, in "
                        f"{(time.time() - started) / 60:.1f} min")
    return result


def _flagged(result: GateResult) -> list:
    """Timing comparisons called a regression or an improvement: both are re-measured. A worker pair can run a
    few percent apart for its whole life, so identical code is sometimes "significantly" faster on one
    measurement (stop 26: 1-2 of 24 same-code gates per metric); only fresh processes tell that apart."""
    return [c for c in result.comparisons if c.kind == "timing" and c.verdict in (REGRESSION, IMPROVEMENT)]


def flagged_points(result: GateResult) -> set[str]:
    return {c.point_id for c in _flagged(result)}


def confirmation_sets(options: MeasureOptions, sides, base_dir: Path, result: GateResult) -> list[str]:
    """The overrides of the confirmation: only the decoders with a flagged point, unless a side's own --set
    indexes into the decoder list (decoders.0.knobs...), which would then point at another decoder."""
    indexed = any(s.startswith("decoders") for side in sides for s in side.extra_sets)
    decoders = [] if indexed else _decoders_of(base_dir, flagged_points(result))
    return list(options.sets) + ([f"decoders={json.dumps(decoders)}"] if decoders else [])


def confirm(result: GateResult, again: GateResult | None, options: MeasureOptions) -> None:
    """A flagged timing regression (or improvement) stays one only if the fresh measurement `again` flags it the
    same way; otherwise it becomes "cannot tell" (when the re-measure cannot tell) or ok."""
    flagged = _flagged(result)
    if not flagged or again is None:
        result.confirmation = ("no timing change to confirm" if not flagged else
                               "confirmation off (--no-confirm): flagged points count on one measurement")
        return
    by_key = {(c.point_id, c.metric): c for c in again.comparisons}
    kept, n_regressions = 0, sum(c.verdict == REGRESSION for c in flagged)
    for c in flagged:
        second = by_key.get((c.point_id, c.metric))
        if second is not None and second.verdict == c.verdict:
            kept += 1
            c.note = "; ".join(x for x in (c.note, f"confirmed on re-measure: {100 * second.change:+.1f}%, "
                                                   f"p(Holm)={_p(second.p_adjusted)}") if x)
        else:
            seen = "not re-measured" if second is None else (f"{100 * second.change:+.1f}%, "
                                                              f"p(Holm)={_p(second.p_adjusted)}")
            flagged_as = c.verdict
            c.verdict = CANNOT_TELL if second is not None and second.verdict == CANNOT_TELL else OK
            c.note = "; ".join(x for x in (c.note, f"flagged as {flagged_as} ({100 * c.change:+.1f}%, "
                                                   f"p(Holm)={_p(c.p_adjusted)}) but not reproduced on re-measure "
                                                   f"({seen})") if x)
    result.confirmation = (f"{len(flagged)} flagged timing comparison(s) ({n_regressions} regression(s), "
                           f"{len(flagged) - n_regressions} improvement(s)) re-measured ({options.blocks} fresh "
                           f"blocks a side); {kept} reproduced")


def _p(p: float | None) -> str:
    return "-" if p is None or math.isnan(p) else f"{p:.2g}"


def _decoders_of(run_dir: Path, point_ids: set[str]) -> list[dict]:
    """The suite's decoder entries that own the flagged points (the confirmation re-measures only them)."""
    meta = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    names = set()
    for line in (run_dir / "points.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            p = json.loads(line)
            if p.get("point_id") in point_ids:
                names.add(p.get("decoder"))
    return [d for d in (meta.get("suite") or {}).get("decoders", []) if d.get("name") in names]


def cleanup(repo: Path, worktrees: list[Path | None]) -> None:
    for where in worktrees:
        if where is not None:
            remove_worktree(repo, where)


