"""Autoregressive decoding with a KV cache in gpt-fast's three phases: `prefill`, `decode_one_token`,
`generate`.

    prompt ──► prefill (one pass, fills the cache) ──► token 1 ──► decode_one_token ──► token 2 ──► …

The model is any causal LM callable the transformers way: `model(input_ids=, attention_mask=,
position_ids=, cache= (past_key_values= before transformers 5.24, see dgbench/compat.py), use_cache=True)
-> .logits`. Each phase is its own function so it can
be timed and compiled on its own; `generate` compiles only `decode_one_token`, the part that runs once
per token (with a static cache every decode step has the same shapes, so one graph serves them all).

Numerics follow transformers 5.23's greedy/sampling loop (`GenerationMixin._sample`) operation for
operation, so greedy tokens are identical to `generate(do_sample=False)` and sampled tokens identical
for the same seed: position ids from the attention mask's cumulative sum (left padding gets position 0),
the 2D mask grown by one column per token (static cache: the step's masks built before the forward),
logits of the last position copied to float32, EOS suppressed until `min_new_tokens` (its
MinNewTokensLengthLogitsProcessor), then temperature, then top-k, then one multinomial draw; finished
rows are fed the pad token, as there.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch

from dgbench.compat import cache_arg, cache_kwarg

CACHE_KINDS = ("dynamic", "static")


@dataclass(frozen=True)
class ARSamplingSpec:
    eos_token_id: int | None = 1        # None: EOS is an ordinary token and every row runs to the end
    pad_token_id: int = 0               # fed to (and emitted by) rows that already finished
    do_sample: bool = False             # False: greedy argmax
    temperature: float = 1.0
    top_k: int | None = None            # None: no top-k filter
    min_new_tokens: int = 0             # EOS cannot be chosen before this many tokens (fixed-length runs)

    def __post_init__(self):
        if self.temperature <= 0:
            raise ValueError(f"temperature {self.temperature} must be > 0 (use do_sample=False for greedy)")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k {self.top_k} must be >= 1 or None")


@dataclass
class ARResult:
    sequences: torch.Tensor             # (B, T + steps): prompt then generated ids, pad after a row's EOS
    nfe: int                            # forward passes, a batched pass counting once (prefill included)
    passes_per_sequence: torch.Tensor   # (B,) passes each row took part in before it finished


def positions_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids of a left-padded batch: 0 at each row's first real token; padding gets 0 as in
    transformers' `_prepare_position_ids_for_generation` (its value never matters, it is masked out).  # (B, T)"""
    positions = attention_mask.long().cumsum(-1) - 1
    return positions.masked_fill(attention_mask == 0, 0)


def make_cache(model, kind: str, max_length: int):
    """A transformers KV cache for `model`: dynamic grows per token, static is preallocated to `max_length`
    (fixed shapes: what lets one compiled decode graph serve every step). The one transformers import here:
    the cache is part of the model's calling convention."""
    if kind not in CACHE_KINDS:
        raise ValueError(f"cache {kind!r}: expected one of {', '.join(CACHE_KINDS)}")
    from transformers import DynamicCache, StaticCache

    config = model.config.get_text_config(decoder=True)
    if kind == "static":
        return StaticCache(config=config, max_cache_len=max_length)
    return DynamicCache(config=config)


def prefill(model, input_ids, attention_mask, cache, position_ids=None) -> torch.Tensor:
    """Run the prompt once, writing its keys and values into `cache`; logits of the last position.  # (B, V)"""
    if position_ids is None:
        position_ids = positions_from_mask(attention_mask)
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                **cache_arg(model, cache), use_cache=True, logits_to_keep=1)
    # float32 copy as transformers takes it: the sampler's arithmetic then matches bit for bit, and the
    # (possibly large) output object is not kept alive.
    return out.logits[:, -1].to(copy=True, dtype=torch.float32)


def decode_one_token(model, token, position, cache, attention_mask, cache_key: str | None = None) -> torch.Tensor:
    """One new token per row through the cached model.  token, position: (B, 1) -> (B, V)

    `attention_mask` is the 2D padding mask (B, T_kv), or masks already built for this step (`step_masks`).
    `cache_key`: the model's KV-cache keyword, looked up once by the caller (`cache_kwarg`); looking it up
    here would put an lru_cache call, which dynamo cannot trace, at the top of the compiled step (a graph
    break every token)."""
    out = model(input_ids=token, attention_mask=attention_mask, position_ids=position,
                **({cache_key: cache} if cache_key is not None else cache_arg(model, cache)), use_cache=True)
    return out.logits[:, -1].to(copy=True, dtype=torch.float32)


def step_masks(model, mask_2d, position, cache):
    """The attention masks of one decode step, built before the forward instead of inside it, as transformers
    does for static caches (`prepare_inputs_for_generation`): they depend on how full the cache is, a Python
    int, so building them inside a compiled step would put a changing int in the graph (a recompile, or with
    CUDA graphs a re-record, per token). Eager, the result is the same masks the forward would build."""
    from transformers.masking_utils import create_masks_for_generate

    build = getattr(model, "create_masks_for_generate", create_masks_for_generate)
    shape_only = torch.empty((position.shape[0], position.shape[1], 0), dtype=model.dtype, device=position.device)
    masks = build(config=model.config, inputs_embeds=shape_only, attention_mask=mask_2d, **cache_arg(build, cache),
                  position_ids=position)
    if isinstance(masks, dict):
        return {k: v.contiguous() if v is not None else None for k, v in masks.items()}
    return masks.contiguous() if masks is not None else None


def select_next(spec: ARSamplingSpec, logits: torch.Tensor, n_generated: int) -> torch.Tensor:
    """Next token per row from last-position logits (B, V) float32, the transformers processor order.  # (B,)"""
    if spec.eos_token_id is not None and n_generated < spec.min_new_tokens:
        logits = logits.clone()
        logits[:, spec.eos_token_id] = -float("inf")
    if not spec.do_sample:
        return torch.argmax(logits, dim=-1)
    if spec.temperature != 1.0:   # transformers adds no temperature warper at 1.0; dividing is exact anyway
        logits = logits / spec.temperature
    if spec.top_k is not None:
        k = min(spec.top_k, logits.shape[-1])
        kth = torch.topk(logits, k)[0][..., -1, None]
        logits = logits.masked_fill(logits < kth, -float("inf"))
    probs = torch.nn.functional.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1).squeeze(1)


_COMPILED: dict = {}


def compiled_decode_one_token(static: bool):
    """`decode_one_token` under torch.compile, one wrapper per process and cache kind (dynamo keeps the
    graphs and guards per model; a new wrapper per call would only add lookups). Settings are transformers'
    own for its compiled generate (CompileConfig): dynamic=None, so a size that does change (the dynamic
    cache's length) turns symbolic after one recompile instead of recompiling per token; and on CUDA with a
    static cache "reduce-overhead", i.e. CUDA graphs (the step's masks come from `step_masks`, outside)."""
    mode = "reduce-overhead" if (static and torch.cuda.is_available()) else None
    if static not in _COMPILED:
        _COMPILED[static] = torch.compile(decode_one_token, dynamic=None, mode=mode, fullgraph=False)
    return _COMPILED[static]


def _decode_context(model):
    # transformers switches MoE experts from grouped_mm to batched_mm for the decode phase on accelerators
    # (GenerationMixin._optimize_model_for_decode); using the same switch keeps both engines on the same
    # kernels. A model without it (any non-transformers callable) decodes as is.
    switch = getattr(model, "_optimize_model_for_decode", None)
    return switch() if switch is not None else nullcontext()


@torch.no_grad()
def generate(model, spec: ARSamplingSpec, input_ids, attention_mask, max_new_tokens: int,
             cache_kind: str = "dynamic", clock=None, compile: bool = False, on_token=None) -> ARResult:
    """Greedy or sampled decoding of a left-padded batch, stopping each row at EOS.

    Marks `prefill` on the clock once the first token is chosen (TTFT: it comes from the prefill logits)
    and `token` after every later token, so per-token latency comes from real step times, not total / N.
    `on_token` sees each step's tokens (B,) right after the mark (what a server streams).
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens {max_new_tokens}: the prefill already yields one token, ask for at least 1")
    B, T = input_ids.shape
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    total = T + max_new_tokens
    # The 2D mask of the whole run, allocated once: the prompt's padding then ones. The dynamic cache is
    # given the first T + i columns (its key length); the static cache's step masks are built from the
    # whole buffer (columns past the current token are hidden by causality anyway).
    mask = torch.ones((B, total), dtype=attention_mask.dtype, device=input_ids.device)
    mask[:, :T] = attention_mask
    positions = positions_from_mask(attention_mask)                    # (B, T)
    cache = make_cache(model, cache_kind, total)
    step = compiled_decode_one_token(static=cache_kind == "static") if compile else decode_one_token
    has_eos = spec.eos_token_id is not None
    cache_key = cache_kwarg(model)

    logits = prefill(model, input_ids, attention_mask, cache, positions)
    token = select_next(spec, logits, 0)                               # (B,)
    unfinished = torch.ones(B, dtype=torch.bool, device=input_ids.device)
    passes = torch.ones(B, dtype=torch.long, device=input_ids.device)
    if has_eos:
        unfinished &= token != spec.eos_token_id
    generated = [token]
    if clock is not None:
        clock.mark("prefill")
    if on_token is not None:
        on_token(token)
    nfe = 1
    position = positions[:, -1:] + 1                                   # (B, 1)
    with _decode_context(model):
        for i in range(1, max_new_tokens):
            # One host sync per step, as transformers does, and only when rows can stop early.
            if has_eos and not bool(unfinished.any()):
                break
            step_mask = step_masks(model, mask, position, cache) if cache_kind == "static" else mask[:, :T + i]
            logits = step(model, token[:, None], position, cache, step_mask, cache_key)
            nfe += 1
            passes += unfinished
            token = select_next(spec, logits, i)
            if has_eos:
                token = torch.where(unfinished, token, spec.pad_token_id)
                unfinished &= token != spec.eos_token_id
            generated.append(token)
            position = position + 1
            if clock is not None:
                clock.mark("token")
            if on_token is not None:
                on_token(token)
    sequences = torch.cat([input_ids, torch.stack(generated, dim=1)], dim=1)   # (B, T + steps)
    return ARResult(sequences=sequences, nfe=nfe, passes_per_sequence=passes)


def left_pad(sequences: list[list[int]], pad_token_id: int, device="cpu"):
    """Token lists -> (ids, attention_mask), right-aligned (left padding), the layout `generate` expects."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        if seq:
            ids[row, width - len(seq):] = torch.tensor(seq, dtype=torch.long)
            mask[row, width - len(seq):] = 1
    return ids.to(device), mask.to(device)
