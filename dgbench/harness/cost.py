"""What a point costs before it runs: forward passes and token positions per call (each engine knows its
own, Decoder.cost_estimate) times the calls its scenario makes at least. The dry run prints these;
`--shard I/N` balances shards by them."""

from __future__ import annotations


def cost_estimate(point) -> dict:
    """Forward passes and token positions one call of `point` costs."""
    from dgbench.backends import ENGINES
    from dgbench.models.registry import get

    return ENGINES[point.engine].factory.cost_estimate(get(point.model), point.knobs, point.batch_size,
                                                       point.prompt_length, point.gen_length)


def point_cost(point, measure: dict) -> int:
    """Token positions a point processes at least: the weight `--shard` balances."""
    from dgbench.scenarios import for_point

    return cost_estimate(point)["positions"] * for_point(point).calls(point, measure)
