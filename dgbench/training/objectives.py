"""The two training objectives over one backbone, and the batches they read.

Masked diffusion (LLaDA, Nie et al. arXiv 2502.09992, Algorithm/eq. 5 and its SFT recipe; MDLM, Sahoo et
al. arXiv 2406.07524): draw t ~ U(0, 1) per sequence, mask each answer token independently with
probability t (LLaDA's forward_process: p = (1 - eps) t + eps), run the model bidirectionally, and take
the cross entropy on masked positions weighted by 1 / p, summed and divided by the answer length, then
averaged over the batch. The prompt is never masked (LLaDA SFT). The forward pass is
backends.masked_lm.BidirectionalDecoderDenoiser, the very adapter the `dgbench-masked` engine decodes
with, so training and decoding run the model the same way (full 4D mask, positions 0..T-1).

In-place rows (the v2 tasks, training/learnable.py): the quality suite decodes Sudoku and pyfill in place
(fill_template: the givens, or the code after the gap, fixed in the output). The masked objective trains
that layout too: the answer region is the filled template, only its blanks may be masked and scored, the
given positions stay clean (gemma_pair.canvas_target builds the same canvas for the uniform objective).
pyfill is always in place (the variable the gap assigns is named only after it); a Sudoku row with
probability IN_PLACE_SHARE (else the whole grid after the prompt). The v1 tasks keep the after-prompt rows,
so their cards' commands reproduce.

Autoregressive: next-token cross entropy on the answer and its EOS, prompt tokens unscored, causal mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dgbench.training.backbone import BYTE_OFFSET, SPECIAL_TOKENS

EPS = 1e-3   # LLaDA's smallest masking probability, so 1 / p stays bounded


@dataclass
class Batch:
    input_ids: torch.Tensor       # (B, T) prompt, answer, then pad
    attention_mask: torch.Tensor  # (B, T) True on real tokens
    answer_mask: torch.Tensor     # (B, T) True where the loss may fall (answer region)


def encode(text: str) -> list[int]:
    return [b + BYTE_OFFSET for b in text.encode("utf-8")]


IN_PLACE_SHARE = 0.5   # v2 Sudoku rows trained in place (as gemma_pair.IN_PLACE_SHARE)


def in_place_flags(items, generator: torch.Generator) -> list[bool] | None:
    """Which rows of a v2 batch are in place (None for a v1 batch: no draw, so v1 runs reproduce)."""
    from dgbench.training.learnable import V2_TASKS

    if not items or items[0].task not in V2_TASKS or items[0].template is None:
        return None
    draws = torch.rand(len(items), generator=generator)
    return [it.answer_span is not None or bool(d < IN_PLACE_SHARE) for it, d in zip(items, draws)]


def _in_place_answer(item) -> tuple[list[int], list[bool]]:
    """The filled template (ids) and which of its positions are blanks (masked and scored)."""
    from dgbench.training.gemma_pair import canvas_target

    ids, fixed = canvas_target(item, in_place=True)
    length = len(item.template)            # fill_template decodes exactly the template's positions
    return ids[:length], [not f for f in fixed[:length]]


def make_batch(items, objective: str, gen_length: int, in_place: list[bool] | None = None) -> Batch:
    """Right-padded batch. Diffusion: the answer + EOS padding fills exactly gen_length positions (what the
    masked engine will be asked to fill), or for an in-place row the filled template with only its blanks
    in the loss; AR: the answer and one EOS."""
    eos, pad = SPECIAL_TOKENS["eos"], SPECIAL_TOKENS["pad"]
    rows, scored = [], []
    for b, item in enumerate(items):
        text = item.ar_prompt if objective == "autoregressive" and item.ar_prompt else item.prompt
        prompt, answer = encode(text), encode(item.answer) + [eos]
        blanks = [True] * len(answer)
        if objective == "diffusion" and in_place is not None and in_place[b]:
            answer, blanks = _in_place_answer(item)
        elif objective == "diffusion":
            if len(answer) > gen_length:
                raise ValueError(f"{item.id}: answer of {len(answer)} tokens exceeds gen_length {gen_length}")
            answer = answer + [eos] * (gen_length - len(answer))
            blanks = [True] * len(answer)
        rows.append(prompt + answer)
        scored.append([False] * len(prompt) + blanks)
    T = max(map(len, rows))
    ids = torch.full((len(rows), T), pad, dtype=torch.long)
    attn = torch.zeros((len(rows), T), dtype=torch.bool)
    ans = torch.zeros((len(rows), T), dtype=torch.bool)
    for b, (row, mask) in enumerate(zip(rows, scored)):
        ids[b, :len(row)] = torch.tensor(row)
        attn[b, :len(row)] = True
        ans[b, :len(mask)] = torch.tensor(mask)
    return Batch(ids, attn, ans)


def diffusion_loss(model, batch: Batch, generator: torch.Generator) -> torch.Tensor:
    from dgbench.backends.masked_lm import BidirectionalDecoderDenoiser

    B, T = batch.input_ids.shape
    t = torch.rand(B, generator=generator)                                   # (B,)
    p = (1 - EPS) * t + EPS
    masked = (torch.rand(B, T, generator=generator) < p[:, None]) & batch.answer_mask     # (B, T)
    noisy = torch.where(masked, SPECIAL_TOKENS["mask"], batch.input_ids)
    logits = BidirectionalDecoderDenoiser(model).logits(noisy, batch.attention_mask)     # (B, T, V)
    token_loss = F.cross_entropy(logits[masked], batch.input_ids[masked], reduction="none")  # (M,)
    answer_len = batch.answer_mask.sum(dim=1, keepdim=True).expand(B, T)[masked]
    weight = 1.0 / (p[:, None].expand(B, T)[masked] * answer_len)
    return (token_loss * weight).sum() / B


def autoregressive_loss(model, batch: Batch, generator: torch.Generator | None = None) -> torch.Tensor:
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask.long()).logits  # (B, T, V)
    targets = batch.input_ids[:, 1:]                       # position i predicts token i + 1
    scored = batch.answer_mask[:, 1:]
    return F.cross_entropy(logits[:, :-1][scored].float(), targets[scored])


LOSSES = {"diffusion": diffusion_loss, "autoregressive": autoregressive_loss}
