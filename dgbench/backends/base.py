"""The decoder contract the harness drives, and the registry of decoding engines.

An engine declares its knobs as validation rules, so a suite is checked before anything loads. Engine
modules import torch only inside methods: registering them costs nothing at CLI start-up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dgbench.validation import Field


@dataclass
class GenerationRecord:
    """What one generate call produced and how long each phase took (seconds from the call's start)."""

    tokens: list[list[int]]              # generated ids per sequence, truncated to the requested length
    useful_tokens: list[int]             # per sequence: up to and excluding the first EOS/pad
    e2e_s: float
    nfe: int                             # forward passes of the token-producing network, batched pass = 1
    nfe_per_sequence: list[int]          # passes each sequence took part in (for tokens per forward)
    first_output_s: float | None         # TTFT (AR) / time to first committed canvas (diffusion)
    token_times_s: list[float] = field(default_factory=list)    # AR: when each decode step finished
    canvas_times_s: list[float] = field(default_factory=list)   # diffusion: when each canvas was committed
    step_times_s: list[float] = field(default_factory=list)     # diffusion: duration of each denoising step
    steps_per_canvas: list[int] = field(default_factory=list)
    step_cap: int | None = None
    canvas_length: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Decoder:
    """A loaded model wrapped for one decoding engine; `generate` is the timed call."""

    paradigm: str = ""

    def __init__(self, model, spec, knobs: dict):
        self.model = model
        self.spec = spec
        self.knobs = knobs

    def generate(self, prompt_ids, attention_mask, gen_length: int, fixed_length: bool, seed: int,
                 clock) -> GenerationRecord:  # pragma: no cover - contract
        raise NotImplementedError

    @classmethod
    def cost_estimate(cls, spec, knobs: dict, batch: int, prompt_length: int, gen_length: int) -> dict:
        """Forward passes and token positions one call costs (`dgbench run --dry-run`), at most: the
        default is autoregressive, one pass per generated token over a KV cache."""
        return {"passes": gen_length, "positions": batch * (prompt_length + gen_length)}

    @classmethod
    def lint(cls, spec, knobs: dict, gen_length: int) -> list:
        """Settings that cannot work or silently degrade (dgbench.decoding.lint.Finding), before anything loads."""
        from dgbench.decoding.lint import lint_point

        return lint_point(knobs, gen_length, spec.canvas_length)


class CanvasCostMixin:
    """cost_estimate for canvas-by-canvas diffusion (DiffusionGemma): an upper bound, every canvas runs to
    its step cap (adaptive stopping can only cut it); the encoder sees the prompt and committed canvases."""

    @classmethod
    def cost_estimate(cls, spec, knobs: dict, batch: int, prompt_length: int, gen_length: int) -> dict:
        import math

        if spec.paradigm != "diffusion":
            return super().cost_estimate(spec, knobs, batch, prompt_length, gen_length)
        canvas = knobs.get("canvas_length") or spec.canvas_length
        canvases = math.ceil(gen_length / canvas)
        passes = canvases * knobs["max_denoising_steps"]
        return {"passes": passes, "positions": batch * (prompt_length + canvases * canvas + passes * canvas)}


class InPlaceFillMixin:
    """`fill_template` for diffusion decoders whose `generate` takes `fixed=(tokens, mask)`: the quality
    harness fills in place (a Sudoku grid, a code gap) through any decoder that has this method."""

    def fill_template(self, prompt_ids, attention_mask, template: list, seed, clock) -> GenerationRecord:
        """Fill the None positions of `template` (ids, one per output position) in place: the known ids sit
        in the output from the first step and are never changed (batch 1)."""
        import torch

        device = prompt_ids.device
        fixed_mask = torch.tensor([[t is not None for t in template]], dtype=torch.bool, device=device)
        fixed_tokens = torch.tensor([[t if t is not None else 0 for t in template]], dtype=torch.long,
                                    device=device)
        rec = self.generate(prompt_ids, attention_mask, len(template), True, seed, clock,
                            fixed=(fixed_tokens, fixed_mask))
        # Useful tokens are the generated ones: the blanks, not the positions that were given.
        rec.useful_tokens = [sum(t is None for t in template)]
        rec.extra["fixed_positions"] = len(template) - rec.useful_tokens[0]
        return rec


class MarkingStreamer:
    """transformers' streamer protocol: put() once with the prompt, then once per generated token (AR)
    or committed canvas (diffusion). Each put after the first marks `label` on the clock."""

    def __init__(self, clock, label: str):
        self.clock = clock
        self.label = label
        self.calls = 0

    def put(self, value) -> None:
        self.calls += 1
        if self.calls > 1:
            self.clock.mark(self.label)

    def end(self) -> None:
        pass


@dataclass(frozen=True)
class Engine:
    name: str
    paradigm: str                       # "diffusion" | "autoregressive"
    description: str
    knobs: dict[str, Field]
    factory: Callable[..., Decoder]


ENGINES: dict[str, Engine] = {}


def register_engine(name: str, paradigm: str, description: str, knobs: dict[str, Field]):
    """Class decorator: register a Decoder class once under `name` with its knob rules."""

    def wrap(cls):
        if name in ENGINES:
            raise ValueError(f"engine {name!r} registered twice")
        ENGINES[name] = Engine(name, paradigm, description, knobs, cls)
        cls.paradigm = paradigm
        return cls

    return wrap


def stream_rows(on_output, per_token: bool = False):
    """Adapt a decoder's `on_output(rows)` (new ids per sequence, as lists) to a decoding loop's tensor hook:
    a committed canvas (B, L), or one step's tokens (B,) when `per_token`. None stays None (no host sync).

    Engines that take `on_output` stream what they commit as they commit it (dgbench serve sends each call
    as one chunk); the rest are served as one chunk at the end."""
    if on_output is None:
        return None
    if per_token:
        return lambda tokens: on_output([[t] for t in tokens.tolist()])
    return lambda canvas: on_output(canvas.tolist())


def useful_length(tokens: list[int], stop_ids: set[int]) -> int:
    """Generated tokens up to and excluding the first EOS or pad (DESIGN.md: useful tokens)."""
    for i, t in enumerate(tokens):
        if t in stop_ids:
            return i
    return len(tokens)


def steps_between(step_times: list[float], canvas_times: list[float]) -> tuple[list[int], list[float]]:
    """Split step-start marks into canvases; a step lasts until the next step starts or its canvas commits."""
    steps_per_canvas, durations = [], []
    i = 0
    for commit in canvas_times:
        starts = []
        while i < len(step_times) and step_times[i] <= commit:
            starts.append(step_times[i])
            i += 1
        steps_per_canvas.append(len(starts))
        durations += [b - a for a, b in zip(starts, starts[1:] + [commit])]
    return steps_per_canvas, durations
