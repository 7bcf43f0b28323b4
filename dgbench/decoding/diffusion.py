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
from dgbench.decoding.first_argmax import first_argmax
from dgbench.decoding.multinomial import multinomial_rows


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
        """Logits (B, L, V) in float32 for the canvas, given last step's self-conditioning: a fresh tensor,
        which the loop tempers in place."""


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


@dataclass
class _StepState:
    """What one denoising step hands the next: the noisy canvas, the current best guess, last step's
    tempered logits and probabilities (self-conditioning), and which canvases of the batch have stopped."""
    canvas: torch.Tensor                 # (B, L)
    argmax: torch.Tensor                 # (B, L)
    sc_logits: torch.Tensor | None       # (B, L, V)
    sc_probs: torch.Tensor | None        # (B, L, V)
    finished: torch.Tensor               # (B,)


def _fixed_positions(fixed_tokens, fixed_mask, canvas_index: int, L: int, like: torch.Tensor):
    """A function pinning this canvas's known output positions (None when there are none)."""
    if fixed_mask is None:
        return None
    B, lo = like.shape[0], canvas_index * L
    fm = torch.zeros(B, L, dtype=torch.bool, device=like.device)
    ft = torch.zeros(B, L, dtype=like.dtype, device=like.device)
    width = min(L, fixed_mask.shape[1] - lo)
    fm[:, :width] = fixed_mask[:, lo:lo + width]
    ft[:, :width] = fixed_tokens[:, lo:lo + width]
    return lambda x: torch.where(fm, ft, x)


def denoise_step(denoiser: CanvasDenoiser, spec: EntropyBoundSpec, state: _StepState, context: object,
                 remaining: int, stopper: StableAndConfident | None, keep_fixed) -> tuple[_StepState, torch.Tensor,
                                                                                         torch.Tensor]:
    """One step: denoise, temper, accept the low-entropy positions, sample them, renoise the rest.

    Returns the next state, the accepted mask and the per-position entropy (B, L). The reference computes
    the entropy twice (acceptance, stopping) and samples every position; here it is computed once and only
    accepted positions are sampled (decoding/multinomial.py: same random numbers drawn, same tokens)."""
    B, L = state.canvas.shape
    logits = denoiser.denoise(state.canvas, state.sc_logits, state.sc_probs, context)      # (B, L, V) float32
    tempered = logits.div_(temperature(spec, remaining, state.canvas.device))              # in place: ours
    probs = torch.softmax(tempered, dim=-1, dtype=torch.float32)
    entropy = token_entropy(tempered)                                                      # (B, L)
    accepted = accept_mask(entropy, spec.entropy_bound)
    sampled = multinomial_rows(probs.view(-1, spec.vocab_size), accepted.view(-1)).view(B, L)
    new_argmax = first_argmax(tempered)                                                    # torch.argmax's indices
    new_canvas = renoise(spec, torch.where(accepted, sampled, state.canvas), accepted)
    finished = state.finished
    if stopper is not None:
        if finished.any():  # a stopped canvas keeps its state while the rest of the batch goes on
            keep = finished[:, None]
            new_argmax = torch.where(keep, state.argmax, new_argmax)
            new_canvas = torch.where(keep, state.canvas, new_canvas)
            tempered = torch.where(keep[..., None], state.sc_logits, tempered)
            probs = torch.where(keep[..., None], state.sc_probs, probs)
        finished = finished | stopper(new_argmax, entropy)
    if keep_fixed is not None:
        new_canvas, new_argmax = keep_fixed(new_canvas), keep_fixed(new_argmax)
    return _StepState(new_canvas, new_argmax, tempered, probs, finished), accepted, entropy


def denoise_canvas(denoiser: CanvasDenoiser, spec: EntropyBoundSpec, context: object, batch: int, device,
                   keep_fixed, canvas_index: int, live: torch.Tensor, passes: torch.Tensor, mark,
                   on_step) -> tuple[torch.Tensor, int]:
    """Up to N steps on one canvas from x_T; the final argmax canvas and the number of steps taken.
    `live` (B,) marks sequences not yet ended; `passes` counts the passes each took part in (in place)."""
    canvas = initial_canvas(spec, batch, device)                                           # (B, L)
    if keep_fixed is not None:
        canvas = keep_fixed(canvas)
    state = _StepState(canvas, canvas, None, None, torch.zeros(batch, dtype=torch.bool, device=device))
    stopper = StableAndConfident(spec) if spec.adaptive_stopping else None
    steps = 0
    for remaining in range(spec.max_denoising_steps, 0, -1):
        passes += ~state.finished & live
        mark("step")
        state, accepted, entropy = denoise_step(denoiser, spec, state, context, remaining, stopper, keep_fixed)
        steps += 1
        if on_step is not None:
            on_step(StepEvent(canvas_index, steps - 1, accepted, entropy, state.argmax, state.finished))
        if stopper is not None and torch.all(state.finished):
            break
    return state.argmax, steps


@torch.inference_mode()
def generate(denoiser: CanvasDenoiser, spec: EntropyBoundSpec, input_ids: torch.Tensor,
             attention_mask: torch.Tensor | None, max_new_tokens: int, clock: _Clock | None = None,
             on_step: Callable[[StepEvent], None] | None = None, fixed_tokens: torch.Tensor | None = None,
             fixed_mask: torch.Tensor | None = None,
             on_canvas: Callable[[torch.Tensor], None] | None = None) -> CanvasResult:
    """Generate max_new_tokens after the prompt, canvas by canvas: encode (the prompt, then each committed
    canvas), `denoise_canvas`, commit (`_finalize`), advance the masks and positions by one canvas.

    `fixed_tokens` / `fixed_mask` (B, max_new_tokens) hold positions of the output that are known, e.g. a
    Sudoku's givens or the code after a gap: they sit in the canvas from the start, are never renoised,
    and the denoiser attends to them bidirectionally, so the blanks are filled in place. Without them the
    loop (and its random stream) is exactly the reference's.

    `on_canvas` sees each committed canvas (B, L) right after it is marked (padded after EOS), which is
    what a server streams; it reads the tokens only, so the loop's numbers and random stream are unchanged.
    """
    device = input_ids.device
    B, cur_len = input_ids.shape
    L = spec.canvas_length
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
    sequences = to_encode = input_ids
    denoiser.begin(B, max_length)

    for canvas_index in range(math.ceil(max_new_tokens / L)):
        denoiser.encode(to_encode, attention_mask, encoder_positions)   # prompt, then the last canvas
        if canvas_index == 0:
            mark("prefill")
        context = denoiser.canvas_context(decoder_mask, decoder_positions)
        keep_fixed = _fixed_positions(fixed_tokens, fixed_mask, canvas_index, L, input_ids)
        committed, steps = denoise_canvas(denoiser, spec, context, B, device, keep_fixed, canvas_index,
                                          ~finished_sequences, passes, mark, on_step)
        steps_per_canvas.append(steps)
        sequences = torch.cat([sequences, committed], dim=-1)
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

    return CanvasResult(sequences, passes, sum(steps_per_canvas), steps_per_canvas)
