"""Uniform renoising with entropy-bound acceptance: the DiffusionGemma sampler.

Each step the denoiser predicts every canvas position; the k lowest-entropy predictions are accepted
such that  sum_i^k H_i - max(H_1..H_k) <= entropy_bound  (an upper bound on their joint mutual
information, so the accepted tokens are nearly independent: Lavenda et al., arXiv 2505.24857), and
every other position is replaced by a fresh uniform sample. A linear temperature schedule cools from
t_max at the first step to t_min at the last. A canvas stops early once its argmax prediction has been
stable for `stability_threshold` steps and its mean entropy is below `confidence_threshold`.

Numerics follow transformers 5.23 (generation_diffusion_gemma.py) operation for operation, so that
with the same seed our engine's tokens are bit-identical to `DiffusionGemmaForBlockDiffusion.generate`;
the comments say where an operation is kept only for that reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class EntropyBoundSpec:
    vocab_size: int
    canvas_length: int
    max_denoising_steps: int = 48
    entropy_bound: float = 0.1
    t_min: float = 0.4
    t_max: float = 0.8
    adaptive_stopping: bool = True
    stability_threshold: int = 1
    confidence_threshold: float = 0.005
    eos_token_id: int | None = 1
    pad_token_id: int | None = 0


def initial_canvas(spec: EntropyBoundSpec, batch: int, device) -> torch.Tensor:
    """x_T ~ U(V): a canvas of uniform random tokens.  # (B, L)"""
    return torch.randint(0, spec.vocab_size, (batch, spec.canvas_length), device=device)


def temperature(spec: EntropyBoundSpec, remaining_steps: int, device) -> torch.Tensor:
    # t = t_min + (t_max - t_min) * n / N, n counting down from N. Computed on an int32 tensor, as the
    # reference does, so the float32 rounding of t (and thus every logit) matches bit for bit.
    n = torch.tensor(remaining_steps, device=device, dtype=torch.int32)
    return spec.t_min + ((spec.t_max - spec.t_min) * (n / spec.max_denoising_steps))


def token_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of softmax(logits) per position, the exact ops of torch.distributions.Categorical.entropy
    without building the distribution (which validates its argument: a full extra pass).  # (B, L)"""
    normalized = logits - logits.logsumexp(dim=-1, keepdim=True)
    probs = torch.nn.functional.softmax(normalized, dim=-1)
    # clamp and multiply in place on the two temporaries: the same kernels, two fewer (B, L, V) buffers
    clamped = normalized.clamp_(min=torch.finfo(normalized.dtype).min)
    return -probs.mul_(clamped).sum(-1)


def accept_mask(entropy: torch.Tensor, bound: float) -> torch.Tensor:
    """Accept the lowest-entropy positions while cumulative entropy minus the largest stays <= bound."""
    sorted_entropy, order = torch.sort(entropy, dim=-1, descending=False)
    cumulative = torch.cumsum(sorted_entropy, dim=-1)
    selected = cumulative - sorted_entropy <= bound   # sorted ascending: the running max is the current one
    return torch.scatter(torch.zeros_like(selected), dim=-1, index=order, src=selected)


def renoise(spec: EntropyBoundSpec, accepted: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Replace every non-accepted position by a fresh uniform token (a full canvas is drawn, as the
    reference does, so the random stream stays aligned)."""
    fresh = initial_canvas(spec, accepted.shape[0], accepted.device)
    return torch.where(~mask, fresh, accepted)


class StableAndConfident:
    """Per-sample adaptive stop: argmax unchanged for `stability_threshold` steps and mean entropy low."""

    def __init__(self, spec: EntropyBoundSpec):
        self.threshold = spec.stability_threshold
        self.confidence = spec.confidence_threshold
        self.history = None

    def __call__(self, argmax_canvas: torch.Tensor, entropy: torch.Tensor) -> torch.Tensor:
        if self.threshold == 0:
            stable = torch.ones(argmax_canvas.shape[0], dtype=torch.bool, device=argmax_canvas.device)
        else:
            if self.history is None:
                self.history = torch.full((self.threshold, *argmax_canvas.shape), -1, dtype=argmax_canvas.dtype,
                                          device=argmax_canvas.device)
            stable = (self.history == argmax_canvas[None]).all(dim=-1).all(dim=0)
            self.history = torch.roll(self.history, shifts=-1, dims=0)
            self.history[-1] = argmax_canvas
        return stable & (entropy.mean(dim=-1) < self.confidence)
