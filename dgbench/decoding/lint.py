"""Catch decoder settings that cannot work or silently degrade, before anything is loaded or timed.

Errors stop the run; warnings are printed and stored with the run. Rules read knob names, not engine
classes, so they apply to every engine that has the knob.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    level: str      # "error" | "warning"
    message: str


def lint_point(knobs: dict, gen_length: int, canvas_default: int | None = None) -> list[Finding]:
    out: list[Finding] = []
    err = lambda m: out.append(Finding("error", m))      # noqa: E731
    warn = lambda m: out.append(Finding("warning", m))   # noqa: E731

    t_min, t_max = knobs.get("t_min"), knobs.get("t_max")
    if t_min is not None and t_max is not None and t_max <= t_min:
        err(f"t_max ({t_max}) must be above t_min ({t_min}): the schedule cools from t_max to t_min")
    steps = knobs.get("max_denoising_steps")
    if steps == 1:
        warn("max_denoising_steps=1: each canvas is one parallel guess with no refinement")

    canvas = knobs.get("canvas_length") or canvas_default
    if canvas and "max_denoising_steps" in knobs:
        if canvas > gen_length:
            warn(f"canvas_length {canvas} > gen_length {gen_length}: every canvas denoises "
                 f"{canvas - gen_length} positions that are thrown away")
        elif gen_length % canvas:
            warn(f"gen_length {gen_length} is not a multiple of canvas_length {canvas}: the last canvas "
                 f"denoises {canvas - gen_length % canvas} positions that are thrown away")

    threshold = knobs.get("threshold")
    if threshold is not None and not 0 < threshold <= 1:
        err(f"threshold {threshold} is outside (0, 1]: it is a probability (Fast-dLLM uses 0.9)")
    block = knobs.get("block_length")
    if block is not None:
        if block > gen_length:
            err(f"block_length {block} is longer than gen_length {gen_length}; use block_length <= gen_length")
        elif gen_length % block:
            err(f"gen_length {gen_length} is not divisible by block_length {block}")
        else:
            blocks = gen_length // block
            total = knobs.get("steps")
            if total is not None and threshold is None:
                if total % blocks:
                    err(f"steps {total} is not divisible by the {blocks} blocks (gen_length / block_length); "
                        f"use a multiple of {blocks}")
                elif total // blocks == 1:
                    warn(f"steps {total} over {blocks} blocks is one step per block: each block is unmasked "
                         "in a single parallel guess")
                elif total // blocks > block:
                    warn(f"{total // blocks} steps per block for {block} tokens: steps beyond one per token "
                         "unmask nothing")
    return out
