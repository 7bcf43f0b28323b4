"""`torch.multinomial(probs, 1)` for only the rows that are used, drawing exactly the same random numbers.

The entropy-bound sampler draws one token per canvas position every step but keeps it only where the
position is accepted (a handful of the L positions); the rest is renoised. On the CPU the draw is the
step's most expensive op after the denoiser itself: for one sample, ATen's multinomial is the Gumbel trick
`argmax(p / q), q ~ Exp(1)` (aten/src/ATen/native/Distributions.cpp, "Fast-path for no replacement or if
only one sample is drawn"), and the CPU `exponential_` kernel draws one `random64()` per element from the
global mt19937 stream, serially, and returns `float(-log1p(-u))` with u its 53-bit uniform in [0, 1)
(ATen's `exponential_distribution<double>` and `transformation::exponential`). That is ~50 ns per element,
i.e. per (position, vocabulary entry): 12 ms of a 60 ms step for one 64 x 4,096 canvas here.

`torch.rand(..., dtype=float64)` draws the same `random64()` per element in the same order with the same
53-bit mapping (the uniform kernel), at a fifteenth of the cost because it skips the logarithm; int64
`random_()` draws the same random64() values and skips the double conversion too (a fifth less again on
the 2-core CPU), and the 53-bit mapping is applied to the used rows only. So we draw the bits for the whole
canvas (the random stream must advance exactly as the reference's does: the
renoising draw comes next), and take the logarithm, the division and the argmax only for accepted rows.
The tokens are then bit-identical to `torch.multinomial`'s at those rows. From the default generator (the
sampler's case) the bits come from `mt19937.draw_rows`, which makes the same stream in vectorized C and
tempers only the used rows (1.44 ms -> 0.26 ms for a 64 x 4,096 canvas here); it probes itself against ATen.

That equivalence is a property of the installed torch, not a promise of its API, so it is checked once per
process on a private generator (`_equivalent`) and the plain `torch.multinomial` is used if it fails, and
always off the CPU (CUDA's kernels are different and a draw there is cheap anyway).
"""

from __future__ import annotations

import functools

import torch

from dgbench.decoding.first_argmax import first_argmax
from dgbench.decoding.mt19937 import _torch_draw, draw_rows


def _rowwise_draw(probs: torch.Tensor, rows: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """The multinomial sample of `probs` (N, V) at `rows` (K,), advancing the generator as for all N rows."""
    # The raw random64() draws, one per element, as `torch.rand(float64)` makes them, minus the conversion of
    # every element to a double: int64 `random_()` keeps random64() mod 2^63 (ATen's uniform_int for int64),
    # and the uniform kernel's double is its low 53 bits times 2^-53 (uniform_real_distribution<double>), which
    # is exact here. Only the K used rows are converted. From the default generator, mt19937.draw_rows makes the
    # same values without tempering the rows nobody reads.
    N, V = probs.shape
    if generator is None:
        low_bits = draw_rows(N, V, rows)                                                               # (K, V)
    else:
        low_bits = _torch_draw(N, V, rows, generator, probs.device)                                    # (K, V)
    uniform = low_bits.to(torch.float64).mul_(2.0 ** -53)
    # q = -1/lambda * log1p(-u) in double, lambda = 1, then stored as the probs' dtype (q = empty_like(probs)).
    q = torch.log1p(-uniform).neg_().to(probs.dtype)                                            # (K, V)
    # Rows are gathered with index_select (an exact copy, cheaper than advanced indexing here), and the argmax is
    # first_argmax: torch.argmax's index, ties and NaN included, at less cost on the CPU.
    return first_argmax(probs.index_select(0, rows).div_(q))                                         # (K,)


@functools.lru_cache(maxsize=None)
def _equivalent(dtype: torch.dtype) -> bool:
    """Does `_rowwise_draw` reproduce `torch.multinomial` here? Probed once, on a private generator, at a
    canvas-like shape, comparing the samples and the generator's state afterwards."""
    shape = (16, 1024)
    probs = torch.softmax(torch.randn(shape, generator=torch.Generator().manual_seed(1)), dim=-1).to(dtype)
    reference, ours = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    expected = torch.multinomial(probs, 1, generator=reference).squeeze(1)
    rows = torch.arange(shape[0])
    got = _rowwise_draw(probs, rows, ours)
    return torch.equal(expected, got) and torch.equal(reference.get_state(), ours.get_state())


def multinomial_rows(probs: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """One sample per row of `probs` (N, V), as `torch.multinomial(probs, 1).squeeze(1)` with the global
    generator, but only rows where `keep` (N,) is true are computed; the others hold 0. The generator
    advances exactly as the full call would.  # (N,)"""
    if probs.device.type != "cpu" or not _equivalent(probs.dtype):
        return torch.multinomial(probs, num_samples=1).squeeze(1)
    rows = keep.nonzero().squeeze(1)                                                                  # (K,)
    out = torch.zeros(probs.shape[0], dtype=torch.long, device=probs.device)
    out[rows] = _rowwise_draw(probs, rows, None)
    return out
