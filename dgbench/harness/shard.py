"""`--shard I/N`: one deterministic Nth of a suite's points, for batch schedulers (a Slurm job array runs
N copies of one command, each with its own I).

Shards are balanced by the dry run's cost estimate (harness/cost.py), not by count: the points are taken
heaviest first and each goes to the shard with the least cost so far (the LPT rule of multiprocessor
scheduling, Graham 1969), ties broken by point id and then the lowest shard number. Every copy computes
the same assignment from the suite alone, so N independent jobs need no coordination, and `dgbench
merge` puts the shards back together (harness/merge.py).
"""

from __future__ import annotations

import re

from dgbench.errors import ConfigError

SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


def parse_shard(text: str) -> tuple[int, int]:
    """'2/3' -> (2, 3); one-line error otherwise."""
    m = SHARD.fullmatch(text or "")
    if not m:
        raise ConfigError(f"--shard {text!r}: expected I/N with 1 <= I <= N, e.g. --shard 2/3")
    index, count = int(m.group(1)), int(m.group(2))
    if count < 1 or not 1 <= index <= count:
        raise ConfigError(f"--shard {text!r}: I/N needs 1 <= I <= N, e.g. --shard 1/{max(count, 1)}")
    return index, count


def assign_shards(points: list, count: int, cost) -> list[int]:
    """Shard number (1..count) of each point, in the points' order; `cost(point)` weighs a point."""
    weights = [cost(p) for p in points]
    order = sorted(range(len(points)), key=lambda i: (-weights[i], points[i].point_id))
    load = [0] * count
    shard_of = [0] * len(points)
    for i in order:
        target = min(range(count), key=lambda s: (load[s], s))
        load[target] += weights[i]
        shard_of[i] = target + 1
    return shard_of


def select_shard(points: list, index: int, count: int, measure: dict) -> list:
    """The points of shard `index` of `count`, in sweep order (decoder by decoder: one model load each)."""
    from dgbench.harness.cost import point_cost

    shard_of = assign_shards(points, count, lambda p: point_cost(p, measure))
    return [p for p, s in zip(points, shard_of) if s == index]
