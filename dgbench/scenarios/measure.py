"""The measurement core every scenario shares.

Warmup calls are run and thrown away (first-call costs: allocator growth, lazy init, compilation).
Timed repetitions then continue until both a minimum count and a minimum measured time are reached,
or a maximum count. Every raw repetition is kept; summaries are computed from them, never instead.

`mark(phase, rep)` (telemetry markers) is called before every call and once after the last: outside the
timed region, so a marker's on-the-spot telemetry sample never lands inside a measured call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class MeasurePlan:
    warmup: int
    min_repetitions: int
    max_repetitions: int
    min_time_s: float


def _no_mark(phase: str, rep: int | None = None) -> None:
    pass


def repeat(call: Callable[[int], object], plan: MeasurePlan, elapsed_of: Callable[[object], float],
           on_rep: Callable[[int], None] | None = None,
           mark: Callable[..., None] | None = None) -> list:
    """Run `call(rep_index)` for warmup (negative indices) then timed reps; return the timed results."""
    mark = mark or _no_mark
    for w in range(plan.warmup):
        mark("warmup", w)
        call(-(w + 1))
    results, measured = [], 0.0
    while len(results) < plan.max_repetitions:
        if len(results) >= plan.min_repetitions and measured >= plan.min_time_s:
            break
        mark("rep", len(results))
        r = call(len(results))
        results.append(r)
        measured += elapsed_of(r)
        if on_rep:
            on_rep(len(results))
    mark("empty")  # closes the last repetition's telemetry window at its end
    return results
