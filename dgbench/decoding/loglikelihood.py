"""Log-likelihood of continuations under a causal LM, batched: lm-eval's `loglikelihood` request.

For each (context, continuation) the model reads  context ++ continuation[:-1]  once, and the answer is
the sum over the continuation of log p(token | everything before it), plus whether every continuation
token is also the argmax there ("is_greedy"). This is how lm-eval scores multiple-choice tasks
(lm_eval/models/huggingface.py, `_loglikelihood_tokens`): same input layout, same left truncation to the
model's window, same float32 log-softmax.

Batches are right-padded, so every real token keeps the position it has alone and padding only ever
follows it (causal attention never looks right): the batched scores equal the one-by-one scores up to
kernel rounding. Requests are sorted longest first, as lm-eval does, so each batch pads little.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def _window(context: Sequence[int], continuation: Sequence[int], max_length: int | None) -> list[int]:
    """The model input of one request: all but the last token, keeping the last `max_length` tokens."""
    if len(continuation) == 0:
        raise ValueError("empty continuation: nothing to score")
    if len(context) == 0:
        raise ValueError("empty context: the first continuation token needs something to be conditioned on "
                         "(prepend BOS, as lm-eval does)")
    whole = [*context, *continuation][:-1]
    return whole[-max_length:] if max_length is not None else whole


@torch.no_grad()
def loglikelihood(model, requests: Sequence[tuple[Sequence[int], Sequence[int]]], pad_token_id: int = 0,
                  batch_size: int = 8, max_length: int | None = None) -> list[tuple[float, bool]]:
    """(sum of log-probabilities of the continuation, is it the greedy continuation) per request, in order.

    `model(input_ids=, attention_mask=)` must return `.logits` (B, T, V); one forward per batch.
    """
    if max_length is not None and any(len(cont) > max_length for _, cont in requests):
        raise ValueError(f"a continuation is longer than max_length {max_length}")
    device = next(model.parameters()).device if hasattr(model, "parameters") else "cpu"
    windows = [_window(ctx, cont, max_length) for ctx, cont in requests]
    order = sorted(range(len(requests)), key=lambda i: -len(windows[i]))
    results: list[tuple[float, bool] | None] = [None] * len(requests)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        width = max(len(windows[i]) for i in chunk)
        ids = torch.full((len(chunk), width), pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, i in enumerate(chunk):
            ids[row, :len(windows[i])] = torch.tensor(windows[i], dtype=torch.long)
            mask[row, :len(windows[i])] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits       # (B, T, V)
        for row, i in enumerate(chunk):
            cont = torch.tensor(list(requests[i][1]), dtype=torch.long, device=logits.device)  # (C,)
            end = len(windows[i])                    # the last real position predicts the last token
            # Only the continuation's rows go through log-softmax, in float32 (bf16 sums drift).
            logprobs = torch.log_softmax(logits[row, end - len(cont):end].float(), dim=-1)    # (C, V)
            picked = logprobs.gather(-1, cont[:, None]).squeeze(-1)                           # (C,)
            greedy = bool((logprobs.argmax(dim=-1) == cont).all())
            results[i] = (float(picked.sum()), greedy)
    return results  # type: ignore[return-value]
