"""The canvas loop: semi-autoregressive block diffusion over any denoiser with a KV-cached prefix.

    prompt ──encode──► KV cache ──► canvas 1: x_T ~ U(V) ─(denoise, accept, renoise)×≤N─► commit
                          ▲                                                          │
                          └──────────────── encode the committed canvas ◄────────────┘

The prompt and each committed canvas are encoded once into the cache; the denoiser reads the cache
and attends bidirectionally inside the canvas. Sequences that end (EOS in a committed canvas) are padded
from there on. Each phase is marked on an optional clock (`prefill`/`step`/`canvas`), and an optional
per-step hook sees the accepted positions and per-position entropy, which is how trajectories are
recorded for reports.

Random numbers are drawn in the reference's order (canvas init, then per step: the multinomial
sample over the whole canvas, then a full uniform canvas for renoising) so that results match
transformers' generate bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch

from dgbench.decoding.entropy_bound import (EntropyBoundSpec, StableAndConfident, accept_mask, initial_canvas,
                                            renoise, temperature, token_entropy)


class CanvasDenoiser(Protocol):
    """What the loop needs from a model. Adapters in dgbench/backends implement it."""

    def begin(self, batch_size: int, max_length: int) -> None:
        """Start a fresh KV cache for one generate call."""

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor) -> None:
        """Append these tokens (the prompt, then each committed canvas) to the cache."""

    def canvas_context(self, decoder_attention_mask: torch.Tensor, position_ids: torch.Tensor) -> object:
        """Whatever stays fixed for all steps of one canvas (masks, rotary tables)."""

    def denoise(self, canvas: torch.Tensor, sc_logits: torch.Tensor | None, sc_probs: torch.Tensor | None,
                context: object) -> torch.Tensor:
        """Logits (B, L, V) in float32 for the canvas, given last step's self-conditioning."""


@dataclass
class StepEvent:
    canvas: int
    step: int                      # 0-based step within the canvas
    accepted: torch.Tensor         # (B, L) bool: positions accepted this step
    entropy: torch.Tensor          # (B, L) per-position entropy of the tempered prediction
    argmax: torch.Tensor           # (B, L) current best guess
    finished: torch.Tensor         # (B,) canvases that have stopped


@dataclass
class CanvasResult:
    sequences: torch.Tensor                       # (B, prompt + canvases * L)
    passes_per_sequence: torch.Tensor             # (B,) denoiser passes each sequence took part in
    nfe: int                                      # batched denoiser passes
    steps_per_canvas: list[int] = field(default_factory=list)


class _Clock(Protocol):
    def mark(self, label: str) -> None: ...


def _finalize(sequences: torch.Tensor, finished: torch.Tensor, spec: EntropyBoundSpec, max_length: int,
              eos: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Stop sequences whose new canvas holds EOS (or that reached max length); pad what follows EOS."""
    L = spec.canvas_length
    done_now = torch.full_like(finished, sequences.shape[1] >= max_length)
    if eos is not None:
        done_now = done_now | torch.isin(sequences[:, -L:], eos).any(dim=-1)
    previously = finished
    finished = previously | done_now
    if spec.pad_token_id is not None and torch.any(finished):
        sequences[previously, -L:] = spec.pad_token_id
        if eos is not None and torch.any(done_now):
            new = sequences[:, -L:]
            is_eos = torch.isin(new, eos)
            seen = is_eos.cumsum(dim=-1)
            new[(seen > 0) & ~((seen == 1) & is_eos)] = spec.pad_token_id
    return sequences, finished


@torch.inference_mode()
def generate(denoiser: CanvasDenoiser, spec: EntropyBoundSpec, input_ids: torch.Tensor,
             attention_mask: torch.Tensor | None, max_new_tokens: int, clock: _Clock | None = None,
             on_step: Callable[[StepEvent], None] | None = None, fixed_tokens: torch.Tensor | None = None,
             fixed_mask: torch.Tensor | None = None,
             on_canvas: Callable[[torch.Tensor], None] | None = None) -> CanvasResult:
    """Generate max_new_tokens after the prompt, canvas by canvas.

    `fixed_tokens` / `fixed_mask` (B, max_new_tokens) hold positions of the output that are known, e.g. a
    Sudoku's givens or the code after a gap: they sit in the canvas from the start, are never renoised,
    and the denoiser attends to them bidirectionally, so the blanks are filled in place. Without them the
    loop (and its random stream) is exactly the reference's.

    `on_canvas` sees each committed canvas (B, L) right after it is marked (padded after EOS), which is
    what a server streams; it reads the tokens only, so the loop's numbers and random stream are unchanged.
    """
    device = input_ids.device
    B, cur_len = input_ids.shape
    L, N = spec.canvas_length, spec.max_denoising_steps
    max_length = cur_len + max_new_tokens
    eos = torch.tensor(spec.eos_token_id, device=device) if spec.eos_token_id is not None else None
    mark = clock.mark if clock is not None else (lambda _label: None)

    attention_mask = (attention_mask if attention_mask is not None
                      else torch.ones(B, cur_len, dtype=torch.bool, device=device)).bool()
    decoder_mask = torch.nn.functional.pad(attention_mask, (0, L), value=True)
    encoder_positions = torch.arange(0, cur_len, dtype=torch.int32, device=device).unsqueeze(0)
    decoder_positions = torch.arange(cur_len, cur_len + L, dtype=torch.int32, device=device).unsqueeze(0)

    finished_sequences = torch.zeros(B, dtype=torch.bool, device=device)
    passes = torch.zeros(B, dtype=torch.int, device=device)
    steps_per_canvas: list[int] = []
    nfe = 0
    sequences = input_ids
    to_encode = input_ids
    denoiser.begin(B, max_length)

    for canvas_index in range(math.ceil(max_new_tokens / L)):
        denoiser.encode(to_encode, attention_mask, encoder_positions)   # prompt, then the last canvas
        if canvas_index == 0:
            mark("prefill")
        canvas = initial_canvas(spec, B, device)                         # (B, L)
        keep_fixed = None
        if fixed_mask is not None:
            lo = canvas_index * L
            fm = torch.zeros(B, L, dtype=torch.bool, device=device)
            ft = torch.zeros(B, L, dtype=canvas.dtype, device=device)
            width = min(L, fixed_mask.shape[1] - lo)
            fm[:, :width] = fixed_mask[:, lo:lo + width]
            ft[:, :width] = fixed_tokens[:, lo:lo + width]
            keep_fixed = lambda x: torch.where(fm, ft, x)  # noqa: E731
            canvas = keep_fixed(canvas)
        context = denoiser.canvas_context(decoder_mask, decoder_positions)
        stopper = StableAndConfident(spec) if spec.adaptive_stopping else None
        finished = torch.zeros(B, dtype=torch.bool, device=device)
        argmax = canvas
        sc_logits = sc_probs = None
        if keep_fixed is not None:
            argmax = canvas
        steps = 0
        for remaining in range(N, 0, -1):
            passes += ~(finished | finished_sequences)
            mark("step")
            logits = denoiser.denoise(canvas, sc_logits, sc_probs, context)          # (B, L, V) float32
            tempered = logits / temperature(spec, remaining, device)
            probs = torch.softmax(tempered, dim=-1, dtype=torch.float32)
            sampled = torch.multinomial(probs.view(-1, spec.vocab_size), num_samples=1).view(B, L)
            new_argmax = torch.argmax(tempered, dim=-1)
            entropy = token_entropy(tempered)                                        # (B, L)
            accepted = accept_mask(entropy, spec.entropy_bound)
            new_canvas = renoise(spec, torch.where(accepted, sampled, canvas), accepted)
            if stopper is not None:
                if finished.any():  # a stopped canvas keeps its state while the rest of the batch goes on
                    keep = finished[:, None]
                    new_argmax = torch.where(keep, argmax, new_argmax)
                    new_canvas = torch.where(keep, canvas, new_canvas)
                    tempered = torch.where(keep[..., None], sc_logits, tempered)
                    probs = torch.where(keep[..., None], sc_probs, probs)
                finished = finished | stopper(new_argmax, entropy)
            if keep_fixed is not None:
                new_canvas, new_argmax = keep_fixed(new_canvas), keep_fixed(new_argmax)
            canvas, argmax = new_canvas, new_argmax
            sc_logits, sc_probs = tempered, probs
            nfe += 1
            steps += 1
            if on_step is not None:
                on_step(StepEvent(canvas_index, steps - 1, accepted, entropy, argmax, finished))
            if stopper is not None and torch.all(finished):
                break
        steps_per_canvas.append(steps)
        sequences = torch.cat([sequences, argmax], dim=-1)
        sequences, finished_sequences = _finalize(sequences, finished_sequences, spec, max_length, eos)
        mark("canvas")
        if on_canvas is not None:
            on_canvas(sequences[:, -L:])
        if torch.all(finished_sequences):
            break
        cur_len += L
        decoder_mask = torch.nn.functional.pad(decoder_mask, (0, L), value=True)
        attention_mask = torch.nn.functional.pad(attention_mask, (0, L), value=True)
        encoder_positions = decoder_positions
        decoder_positions = torch.arange(cur_len, cur_len + L, dtype=torch.int32, device=device).unsqueeze(0)
        to_encode = sequences[:, -L:]

    return CanvasResult(sequences, passes, nfe, steps_per_canvas)
