"""Batch invariance: does a decoder give the same tokens for a prompt alone as inside a batch?

With `measure.batch_invariance: true`, a point at batch B > 1 generates each of its B prompts alone (batch 1,
untimed, the seed of the timed repetition 0) and compares the tokens with row i of repetition 0. A
deterministic decoder should agree exactly; where it does not, batched kernels (padding, reduction order) or
shared sampling state changed the output. A stochastic decoder draws its noise for the whole batch, so its
agreement rate says how much of the output is decided by the model rather than by the draw (cf. Thinking
Machines' "Defeating nondeterminism in LLM inference", 2025, on batch invariance).
"""

from __future__ import annotations

from dgbench.telemetry.timing import Clock


def check_batch_invariance(decoder, point, prompts, mask, device: str, measure: dict, sample_seed: int,
                           batched_tokens: list[list[int]]) -> dict:
    """prompts, mask: the (B, L) batch the timed repetitions ran; batched_tokens: repetition 0's output."""
    clock = Clock(device)
    identical = agree = positions = 0
    first_divergence = []
    for i in range(point.batch_size):
        alone = decoder.generate(prompts[i:i + 1], mask[i:i + 1], point.gen_length, measure["fixed_length"],
                                 sample_seed + 1000, clock).tokens[0]
        batched = batched_tokens[i]
        n = max(len(alone), len(batched))
        same = [k < len(alone) and k < len(batched) and alone[k] == batched[k] for k in range(n)]
        agree += sum(same)
        positions += n
        identical += all(same)
        first_divergence.append(next((k for k, s in enumerate(same) if not s), None))
    return {"batch": point.batch_size, "rows": point.batch_size, "identical_rows": identical,
            "token_agreement": agree / positions if positions else 1.0, "positions": positions,
            "first_divergence": first_divergence,
            "stochastic": bool(type(decoder).stochastic(point.knobs))}
