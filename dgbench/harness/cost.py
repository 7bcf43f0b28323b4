"""What a point costs before it runs: forward passes and token positions per call, and calls per point.

The dry run prints these; `--shard I/N` balances shards by them. An upper bound for diffusion (every canvas
runs to its step cap; adaptive stopping can only cut it)."""

from __future__ import annotations

import math


def cost_estimate(point) -> dict:
    """Forward passes and token positions one call of `point` costs."""
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


def calls_per_point(point, measure: dict) -> int:
    """Calls a point makes at least: quality, warmup + one per item; generation, warmup + the minimum
    repetitions + the memory call (more repetitions run until min_time_s)."""
    if point.task is not None:
        n = point.task_config["n"]   # lm-eval tasks: their document limit (0 when unset: unknown here)
        return measure["warmup"] + (n if point.limit is None else min(n, point.limit))
    return measure["warmup"] + measure["min_repetitions"] + (1 if measure["memory"] else 0)


def point_cost(point, measure: dict) -> int:
    """Token positions a point processes at least: the weight `--shard` balances."""
    return cost_estimate(point)["positions"] * calls_per_point(point, measure)
