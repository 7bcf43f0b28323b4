"""Monte Carlo ELBO of a continuation under a masked-diffusion model: lm-eval's `loglikelihood` for diffusion.

A masked diffusion LM has no exact log-likelihood; what it gives is the variational bound (LLaDA, Nie et al.,
arXiv 2502.09992, Eq. (3); MDLM, Sahoo et al., arXiv 2406.07524, the continuous-time NELBO)

    log p(c | x)  >=  E_t [ 1/t * sum_{i masked in c_t} log p(c_i | x, c_t) ],   t ~ U(0, 1),

where c_t masks each continuation token with probability t and the prompt x stays clean. We estimate it in
the lower-variance form LLaDA evaluates with (its Eq. (12) and public get_log_likelihood.py): draw a count
l from {1, ..., L} (L = continuation length), mask exactly l tokens chosen uniformly, weight by L / l. Both
forms have the same expectation; the 1/t form has infinite variance (a draw with small t masks a token with
probability ~t and then weighs it by 1/t, so E[weight^2] ~ E[1/t] diverges), the l form never does and is
exact for one-token continuations. The l draws are stratified over the samples (low discrepancy: sample k
takes l from the k-th of `samples` equal slices of {1..L}, offset by one shared uniform draw), which
lowers the variance again without changing the expectation.

The estimate is a *lower bound in expectation*, not a log-likelihood: comparing it with an AR model's exact
value favours the AR model by the bound's gap. Everything here is pure torch, no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass
class ElboResult:
    estimate: float          # mean over samples of the weighted masked log-probabilities (nats)
    std_error: float         # standard error of that mean over the samples (nats)
    is_greedy: bool          # with the whole continuation masked, one pass predicts it token for token
    samples: int


def request_seed(seed: int, context: Sequence[int], continuation: Sequence[int]) -> int:
    """A seed per request from its content, so a request's estimate does not depend on batching or order."""
    text = f"{seed}|{','.join(map(str, context))}|{','.join(map(str, continuation))}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def masked_counts(length: int, samples: int, generator: torch.Generator) -> list[int]:
    """Stratified draws of l in {1..length}: sample k from the k-th slice, one shared uniform offset."""
    u = float(torch.rand((), generator=generator))
    return [1 + min(length - 1, int((k + u) * length / samples)) for k in range(samples)]


def mask_rows(continuation: torch.Tensor, counts: list[int], mask_id: int,
              generator: torch.Generator) -> torch.Tensor:
    """One row per count: the continuation with exactly `count` uniformly chosen tokens set to mask_id.
    # (C,) -> (S, C)"""
    rows = continuation.repeat(len(counts), 1)
    for row, count in enumerate(counts):
        chosen = torch.randperm(continuation.numel(), generator=generator)[:count]
        rows[row, chosen] = mask_id
    return rows


@torch.no_grad()
def elbo_loglikelihood(logits_fn, requests: Sequence[tuple[Sequence[int], Sequence[int]]], mask_id: int,
                       pad_id: int, samples: int = 32, seed: int = 0, rows_per_forward: int = 64,
                       max_length: int | None = None, device="cpu", on_forward=None) -> list[ElboResult]:
    """ELBO estimate of each (context, continuation) in token ids, in order.

    `logits_fn(ids, attention_mask)` is a bidirectional denoiser pass, (B, T) long and (B, T) bool ->
    (B, T, V) logits of the token at each position (dgbench/backends/masked_lm.py `make_denoiser(...).logits`).
    Rows are right-padded: padding is masked out of attention and follows every real token, so each real
    position keeps the index it has alone. `on_forward(row_owners)` is told which request each row of a
    forward pass belongs to (the caller's NFE accounting). The mask id is never a clean token, so its
    logit is removed before the log-softmax, as the samplers do (decoding/masked.py suppress_mask).
    """
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    rows: list[tuple[int, list[int], int, list[int], float]] = []   # (request, ids, cont start, masked, weight)
    for r, (context, continuation) in enumerate(requests):
        cont = list(continuation)
        if not cont:
            raise ValueError("empty continuation: nothing to score")
        ctx = list(context)
        if max_length is not None:
            if len(cont) > max_length:
                raise ValueError(f"a continuation of {len(cont)} tokens is longer than max_length {max_length}")
            ctx = ctx[len(ctx) - (max_length - len(cont)):] if len(ctx) + len(cont) > max_length else ctx
        gen = torch.Generator().manual_seed(request_seed(seed, ctx, cont))
        counts = masked_counts(len(cont), samples, gen)
        cont_t = torch.tensor(cont, dtype=torch.long)
        for count, masked in zip(counts, mask_rows(cont_t, counts, mask_id, gen).tolist()):
            rows.append((r, ctx + masked, len(ctx), [i for i, t in enumerate(masked) if t == mask_id],
                         len(cont) / count))
        # The greedy check: everything masked, one pass.
        rows.append((r, ctx + [mask_id] * len(cont), len(ctx), list(range(len(cont))), -1.0))

    per_request: list[list[float]] = [[] for _ in requests]
    greedy = [False] * len(requests)
    for start in range(0, len(rows), rows_per_forward):
        chunk = rows[start:start + rows_per_forward]
        width = max(len(ids) for _, ids, _, _, _ in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        attn = torch.zeros((len(chunk), width), dtype=torch.bool)
        for i, (_, row_ids, _, _, _) in enumerate(chunk):
            ids[i, :len(row_ids)] = torch.tensor(row_ids, dtype=torch.long)
            attn[i, :len(row_ids)] = True
        logits = logits_fn(ids.to(device), attn.to(device)).float()                    # (B, T, V)
        if on_forward is not None:
            on_forward([owner for owner, *_ in chunk])
        logits[..., mask_id] = -torch.inf
        logprobs = torch.log_softmax(logits, dim=-1)                                    # (B, T, V)
        for i, (owner, _, cont_start, masked, weight) in enumerate(chunk):
            clean = list(requests[owner][1])
            positions = torch.tensor([cont_start + m for m in masked], device=logprobs.device)
            targets = torch.tensor([clean[m] for m in masked], device=logprobs.device)
            row = logprobs[i, positions]                                                # (M, V)
            if weight < 0:
                greedy[owner] = bool((row.argmax(dim=-1) == targets).all())
            else:
                per_request[owner].append(weight * float(row.gather(-1, targets[:, None]).sum()))

    out = []
    for values, is_greedy in zip(per_request, greedy):
        n = len(values)
        mean = sum(values) / n
        var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
        out.append(ElboResult(mean, (var / n) ** 0.5, is_greedy, n))
    return out
