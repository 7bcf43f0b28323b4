"""Masked diffusion sampling: LLaDA's semi-autoregressive remasking loop, Dream's confidence scores, and
Fast-dLLM's parallel (threshold) decoding and approximate KV caches.

    prompt ++ [MASK] * gen_length ──► block 1: (predict all, unmask the k most confident)×steps ──► block 2 …

LLaDA (Nie et al., arXiv 2502.09992, and its public generate.py): the answer starts fully masked; it is
split into blocks that are finished left to right; within a block each step predicts every masked
position and keeps the `k` most confident predictions, k following a fixed schedule (the block's masks
spread evenly over its steps). Dream (arXiv 2508.15487) adds the top-1 minus top-2 margin and the
negative entropy as confidence scores. Fast-dLLM (Wu et al., arXiv 2505.22618) replaces the schedule by a
confidence threshold (unmask every prediction above it, at least one per step) and reuses keys and values
across the steps of a block: computed once by a full pass at the block's first step, then only the
block (dual cache) or the block and everything after it (prefix cache) is recomputed. The reused KV goes
stale as tokens get unmasked, so cached runs approximate the uncached ones; they are exact only at each
block's first step.

With caching off and the fixed schedule, numerics and random draws follow LLaDA's generate.py operation
for operation (Gumbel-max in float64, then a uniform draw per position for `random` remasking), so with
the same seed the tokens match it exactly, save that the mask token is never predicted (`suppress_mask`);
tests/test_masked_diffusion.py checks this against a plain re-implementation. Position ids are 0..T-1
over prompt and answer, as LLaDA uses them (left padding in a batch is only masked out of attention,
not skipped in positions).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch

REMASKING = ("low_confidence", "random", "topk_margin", "entropy")
CACHE_MODES = ("none", "prefix", "dual")


@dataclass(frozen=True)
class MaskedDiffusionSpec:
    mask_token_id: int
    gen_length: int
    block_length: int
    steps: int                          # total over all blocks, split evenly as LLaDA does
    temperature: float = 0.0            # 0: greedy argmax
    remasking: str = "low_confidence"
    threshold: float | None = None      # Fast-dLLM parallel decoding; None: LLaDA's fixed schedule
    cache: str = "none"
    eos_token_id: int | None = None     # None: fixed length, EOS is an ordinary token
    pad_token_id: int | None = None

    def __post_init__(self):
        # LLaDA asserts the same divisibilities; saying which number to change is kinder than an assert.
        if self.remasking not in REMASKING:
            raise ValueError(f"remasking {self.remasking!r}: expected one of {', '.join(REMASKING)}")
        if self.cache not in CACHE_MODES:
            raise ValueError(f"cache {self.cache!r}: expected one of {', '.join(CACHE_MODES)}")
        if not 0 < self.block_length <= self.gen_length or self.gen_length % self.block_length:
            raise ValueError(f"gen_length {self.gen_length} must be a positive multiple of block_length "
                             f"{self.block_length}")
        if self.threshold is None and (self.steps < self.num_blocks or self.steps % self.num_blocks):
            raise ValueError(f"steps {self.steps} must be a positive multiple of the {self.num_blocks} blocks "
                             f"(gen_length / block_length)")
        if self.temperature < 0:
            raise ValueError(f"temperature {self.temperature} must be >= 0")

    @property
    def num_blocks(self) -> int:
        return self.gen_length // self.block_length

    @property
    def steps_per_block(self) -> int:
        return self.steps // self.num_blocks


class MaskedDenoiser(Protocol):
    """What the loop needs from a model; dgbench/backends/masked_lm.py adapts transformers models.

    `attention_mask` is (B, T) bool over the whole sequence (False: left padding of the prompt); every
    position attends to every unpadded position. Logits are those of the token *at* each position, in a
    fresh tensor the loop may modify."""

    def logits(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """A full bidirectional pass, nothing kept.  # (B, T) -> (B, T, V)"""

    def prefill(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """A full pass that also keeps every position's keys and values (cache modes).  # (B, T, V)"""

    def window(self, x_window: torch.Tensor, attention_mask: torch.Tensor, start: int, end: int) -> torch.Tensor:
        """Recompute positions [start, end) only; all other positions are read from the KV kept at the
        last `prefill`.  # (B, end - start) -> (B, end - start, V)"""


@dataclass
class StepEvent:
    block: int
    step: int                      # 0-based step within the block
    unmasked: torch.Tensor         # (B, G) bool: answer positions unmasked this step
    confidence: torch.Tensor       # (B, G) score of each answer position (-inf: not a candidate)
    tokens: torch.Tensor           # (B, G) the answer after this step (mask ids where still masked)


@dataclass
class MaskedResult:
    sequences: torch.Tensor                        # (B, P + G) prompt and answer
    passes_per_sequence: torch.Tensor              # (B,) passes in which the sequence still had masks
    nfe: int                                       # batched denoiser passes
    steps_per_block: list[int] = field(default_factory=list)


class _Clock(Protocol):
    def mark(self, label: str) -> None: ...


def initial_sequence(spec: MaskedDiffusionSpec, prompt_ids: torch.Tensor) -> torch.Tensor:
    """The prompt followed by gen_length mask tokens.  # (B, P + G)"""
    masks = torch.full((prompt_ids.shape[0], spec.gen_length), spec.mask_token_id, dtype=torch.long,
                       device=prompt_ids.device)
    return torch.cat([prompt_ids.long(), masks], dim=1)


def num_transfer_tokens(block_masked: torch.Tensor, steps: int) -> torch.Tensor:
    """LLaDA's schedule: a block's masks spread evenly over its steps, the remainder one each over the
    first steps (the linear noise schedule makes the expected count per step equal).  # (B, steps)"""
    mask_num = block_masked.sum(dim=1, keepdim=True)                          # (B, 1)
    base, remainder = mask_num // steps, mask_num % steps
    schedule = base.expand(-1, steps).clone()
    schedule += torch.arange(steps, device=block_masked.device)[None] < remainder
    return schedule


def suppress_mask(spec: MaskedDiffusionSpec, logits: torch.Tensor) -> torch.Tensor:
    """The mask token is never a prediction: the denoiser models p(x0 | xt) over clean tokens (LLaDA's
    trained models give it ~0 probability; LLaDA's generate.py does not mask it). A random-weight model
    does predict it, and a position "unmasked" to the mask id would stay masked: threshold mode would
    never finish its block. The one deviation from LLaDA's generate.py.  # (B, W, V)"""
    logits[..., spec.mask_token_id] = -torch.inf     # in place: denoisers return a fresh tensor
    return logits


def add_gumbel_noise(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Gumbel-max as LLaDA writes it: argmax exp(l) / (-log U)^t samples softmax(l / t). float64 because
    LLaDA found float32 Gumbel noise degrades generation quality (generate.py, "low-precision Gumbel
    Max")."""
    if temperature == 0:
        return logits
    logits = logits.to(torch.float64)
    noise = torch.rand_like(logits, dtype=torch.float64)
    return logits.exp() / (-torch.log(noise)) ** temperature


def confidence(remasking: str, logits: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """Score each prediction; the highest scores are unmasked first.  # (B, W, V), (B, W) -> (B, W)

    Scores read the untempered distribution (LLaDA's low_confidence does; Dream scores its tempered
    one), so the strategies differ only in the score."""
    if remasking == "random":
        return torch.rand(x0.shape, device=x0.device)
    probs = torch.softmax(logits, dim=-1)                                    # (B, W, V)
    if remasking == "low_confidence":
        return torch.gather(probs, -1, x0[..., None]).squeeze(-1)
    if remasking == "topk_margin":
        top2 = torch.topk(probs, 2, dim=-1).values
        return top2[..., 0] - top2[..., 1]
    if remasking == "entropy":
        # Dream's sample_tokens(neg_entropy=True): sum p log(p + eps), i.e. minus the entropy.
        return torch.sum(probs * torch.log(probs + 1e-10), dim=-1)
    raise ValueError(f"unknown remasking {remasking!r}")


def select_top_k(scores: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The k[b] best-scoring positions of each row (a row loop with torch.topk, as LLaDA; so are ties).
    # (B, W), (B,) -> (B, W) bool"""
    chosen = torch.zeros_like(scores, dtype=torch.bool)
    for b in range(scores.shape[0]):
        chosen[b, torch.topk(scores[b], k=int(k[b])).indices] = True
    return chosen


def select_above(scores: torch.Tensor, threshold: float, candidates: torch.Tensor) -> torch.Tensor:
    """Fast-dLLM's parallel decoding: every candidate scoring above the threshold, and always the best
    candidate, so each step makes progress.  # (B, W) -> (B, W) bool"""
    chosen = candidates & (scores > threshold)
    has_any = candidates.any(dim=-1)
    best = torch.zeros_like(chosen)
    best[torch.arange(scores.shape[0], device=scores.device), scores.argmax(dim=-1)] = True
    return chosen | (best & has_any[:, None])


def cache_window(spec: MaskedDiffusionSpec, block_start: int, block_end: int, total: int) -> tuple[int, int]:
    """Positions recomputed at a block's later steps: the block (dual) or the block and its suffix (prefix)."""
    return (block_start, block_end) if spec.cache == "dual" else (block_start, total)


def finish_sequences(spec: MaskedDiffusionSpec, x: torch.Tensor, prompt_len: int,
                     finished: torch.Tensor) -> torch.Tensor:
    """After a block commits: a sequence with EOS in its committed answer is done; everything after its
    first EOS (masks of later blocks included) becomes pad, so its later blocks cost no unmasking. LLaDA
    always runs to gen_length (its SFT pads answers with EOS); stopping here is dgbench's, for the same
    variable-length accounting the canvas loop uses. Returns the updated `finished`.  # (B,)"""
    if spec.eos_token_id is None:
        return finished
    # Answer positions past the committed blocks still hold mask ids, so scanning the whole answer
    # finds exactly the committed EOS.
    answer = x[:, prompt_len:]                                                 # (B, G), a view
    is_eos = answer == spec.eos_token_id
    done = finished | is_eos.any(dim=-1)
    if done.any():
        seen = is_eos.cumsum(dim=-1)
        after_first = (seen > 0) & ~((seen == 1) & is_eos)
        fill = spec.pad_token_id if spec.pad_token_id is not None else spec.eos_token_id
        answer[after_first & done[:, None]] = fill
    return done


@torch.inference_mode()
def generate(denoiser: MaskedDenoiser, spec: MaskedDiffusionSpec, prompt_ids: torch.Tensor,
             attention_mask: torch.Tensor | None = None, clock: _Clock | None = None,
             on_step: Callable[[StepEvent], None] | None = None,
             fixed_tokens: torch.Tensor | None = None, fixed_mask: torch.Tensor | None = None,
             on_canvas: Callable[[torch.Tensor], None] | None = None) -> MaskedResult:
    """`fixed_tokens`/`fixed_mask` (B, gen_length): positions of the answer known in advance (in-place
    infilling, e.g. a Sudoku's givens). They are never masked, so every schedule counts only the blanks.
    `on_canvas` sees each committed block (B, block_length) once it is final (what a server streams)."""
    B, P = prompt_ids.shape
    G, L = spec.gen_length, spec.block_length
    device = prompt_ids.device
    mark = clock.mark if clock is not None else (lambda _label: None)

    x = initial_sequence(spec, prompt_ids)                                     # (B, T)
    if fixed_mask is not None:
        x[:, P:] = torch.where(fixed_mask, fixed_tokens, x[:, P:])
    T = x.shape[1]
    attention_mask = (attention_mask if attention_mask is not None
                      else torch.ones(B, P, dtype=torch.bool, device=device)).bool()
    attention_mask = torch.nn.functional.pad(attention_mask, (0, G), value=True)  # (B, T)
    finished = torch.zeros(B, dtype=torch.bool, device=device)
    passes = torch.zeros(B, dtype=torch.int, device=device)
    steps_per_block: list[int] = []
    nfe = 0

    for block in range(spec.num_blocks):
        b0, b1 = P + block * L, P + (block + 1) * L
        schedule = (None if spec.threshold is not None
                    else num_transfer_tokens(x[:, b0:b1] == spec.mask_token_id, spec.steps_per_block))
        step = 0
        while True:
            in_block = x[:, b0:b1] == spec.mask_token_id                     # (B, L)
            if schedule is None and not in_block.any():
                break                      # threshold mode: a block ends when it is fully unmasked
            if schedule is not None and step == spec.steps_per_block:
                break
            passes += in_block.any(dim=-1)
            mark("step")
            if spec.cache == "none":
                lo, hi = 0, T
                logits = denoiser.logits(x, attention_mask)                  # (B, T, V)
            elif step == 0:
                lo, hi = 0, T              # exact pass that refreshes every position's KV
                logits = denoiser.prefill(x, attention_mask)
            else:
                lo, hi = cache_window(spec, b0, b1, T)
                logits = denoiser.window(x[:, lo:hi], attention_mask, lo, hi)  # (B, W, V)
            nfe += 1
            logits = suppress_mask(spec, logits)
            window = x[:, lo:hi]                                                # (B, W)
            x0 = torch.argmax(add_gumbel_noise(logits, spec.temperature), dim=-1)
            score = confidence(spec.remasking, logits, x0)
            # Candidates: still-masked positions of the current block (LLaDA: -inf after the block;
            # earlier blocks are fully unmasked already).
            positions = torch.arange(lo, hi, device=device)
            candidates = (window == spec.mask_token_id) & (positions >= b0) & (positions < b1)
            score = torch.where(candidates, score, -torch.inf)
            if schedule is None:
                transfer = select_above(score, spec.threshold, candidates)
            else:
                transfer = select_top_k(score, schedule[:, step])
            x[:, lo:hi] = torch.where(transfer, x0, window)
            if on_step is not None:
                full = torch.full((B, T), -torch.inf, device=device)
                full[:, lo:hi] = score
                moved = torch.zeros(B, T, dtype=torch.bool, device=device)
                moved[:, lo:hi] = transfer
                on_step(StepEvent(block, step, moved[:, P:], full[:, P:], x[:, P:].clone()))
            step += 1
        steps_per_block.append(step)
        finished = finish_sequences(spec, x, P, finished)
        mark("canvas")
        if on_canvas is not None:
            on_canvas(x[:, b0:b1])
        if finished.all():
            break

    return MaskedResult(x, passes, nfe, steps_per_block)
