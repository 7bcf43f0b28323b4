"""The measurement core every scenario shares.

Warmup calls are run and thrown away (first-call costs: allocator growth, lazy init, compilation).
Timed repetitions then continue until both a minimum count and a minimum measured time are reached,
or a maximum count. Every raw repetition is kept; summaries are computed from them, never instead.
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


def repeat(call: Callable[[int], object], plan: MeasurePlan, elapsed_of: Callable[[object], float],
           on_rep: Callable[[int], None] | None = None) -> list:
    """Run `call(rep_index)` for warmup (negative indices) then timed reps; return the timed results."""
    for w in range(plan.warmup):
        call(-(w + 1))
    results, measured = [], 0.0
    while len(results) < plan.max_repetitions:
        if len(results) >= plan.min_repetitions and measured >= plan.min_time_s:
            break
        r = call(len(results))
        results.append(r)
        measured += elapsed_of(r)
        if on_rep:
            on_rep(len(results))
    return results
