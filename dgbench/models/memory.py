"""Memory estimator: weights, KV cache, activations and logits buffers of one generate call -> peak bytes.

Every term counts tensors that exist in the code dgbench runs (transformers 5.23 modules, dgbench's
samplers); the liveness counts below were read from that code and checked against allocator traces
(tests/test_memory_estimator.py: within 15% of measured peaks on CPU).

Two phases, the peak is the larger:
  prefill  weights + KV cache of the prompt + one forward over the prompt (the encoder's, for diffusion);
  step     weights + KV cache of the full context + one forward over the step's query tokens (1 for AR,
           the canvas for DiffusionGemma, the whole sequence for masked diffusion, which has no cache)
           + the sampler's logits buffers.
The context is prompt + generated tokens; the prompt defaults to the whole context (the worst case).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dgbench.models.registry import ModelSpec

# Bytes per parameter of the quantised weights; why each number is what it is.
WEIGHT_FORMATS: dict[str, tuple[float, str]] = {
    "fp32": (4.0, "float32"),
    "bf16": (2.0, "bfloat16"),
    "fp16": (2.0, "float16"),
    "fp8": (1.0, "1 byte per value (e4m3); per-tensor scales are negligible"),
    "int4": (0.5 + 4 / 128, "4-bit values + an fp16 scale and an fp16 zero point per group of 128 (AWQ/GPTQ)"),
    "nvfp4": (0.5 + 1 / 16, "4-bit e2m1 values + one fp8 scale per 16 values (plus one fp32 per tensor)"),
}
# Quantised checkpoints keep the embedding table (and the head tied to it) in bf16.
KEPT_BF16 = ("fp8", "int4", "nvfp4")
ATTENTION = ("sdpa", "flash")


@dataclass(frozen=True)
class MemoryEstimate:
    model: str
    dtype: str
    batch: int
    context: int
    prompt: int
    attention: str
    weights: int
    kv_cache: int            # at the full context (the step phase)
    prefill_activations: int  # prompt KV beyond the step's cache + one forward over the prompt
    step_activations: int    # one forward over the step's queries (+ the cache concatenation it makes)
    logits: int              # the sampler's (B, tokens, V) buffers at its peak (after the forward)
    logits_kept: int = 0     # of those, what stays alive through the next forward (self-conditioning)
    notes: dict = field(default_factory=dict)

    @property
    def peak(self) -> int:
        step = max(self.step_activations + self.logits_kept, self.logits)
        return self.weights + self.kv_cache + max(self.prefill_activations, step)

    def rows(self) -> list[tuple[str, int, str]]:
        n = self.notes
        return [("weights", self.weights, n.get("weights", "")),
                ("KV cache", self.kv_cache, n.get("kv_cache", "")),
                ("prefill activations", self.prefill_activations, n.get("prefill", "")),
                ("step activations", self.step_activations, n.get("step", "")),
                ("logits buffers", self.logits, n.get("logits", "")),
                ("peak", self.peak, "weights + KV + max(prefill, step + kept logits, logits)")]


def _text(config):
    return config.text_config if hasattr(config, "backbone_hidden_size") else config.get_text_config()


def _kind(spec: ModelSpec) -> str:
    if spec.architecture == "DiffusionGemmaForBlockDiffusion":
        return "block-diffusion"
    if spec.paradigm == "diffusion":
        return "masked-diffusion"
    if spec.architecture == "Gemma4AssistantForCausalLM":
        return "drafter"
    return "autoregressive"


def _layers(cfg) -> list[tuple[bool, int, int]]:
    """(sliding, kv_heads, head_dim) per layer."""
    if "gemma" in cfg.model_type:          # per-layer head_dim / KV heads (Gemma 4's global layers)
        return [(cfg.layer_types[i] == "sliding_attention", cfg.per_layer_config[i].num_key_value_heads,
                 cfg.per_layer_config[i].head_dim) for i in range(cfg.num_hidden_layers)]
    hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    return [(False, cfg.num_key_value_heads or cfg.num_attention_heads, hd)] * cfg.num_hidden_layers


def kv_cache_bytes(cfg, batch: int, tokens: int, act_bytes: int, appended: int = 1) -> int:
    """K and V of every layer. A sliding layer keeps the last window-1 tokens as a view of the tensor its
    last update concatenated (transformers DynamicSlidingWindowLayer), so its storage is window-1 plus the
    tokens appended by that update; a global layer keeps everything. Gemma 4's K=V global layers still
    store K and V apart (V is normed without scale and unrotated)."""
    window = getattr(cfg, "sliding_window", None)
    total = 0
    for sliding, kv, hd in _layers(cfg):
        kept = min(tokens, window - 1 + appended) if sliding and window else tokens
        total += 2 * batch * kept * kv * hd * act_bytes
    return total


def _largest_layer_kv(cfg, batch: int, tokens: int, act_bytes: int) -> int:
    return max(2 * batch * tokens * kv * hd * act_bytes for _, kv, hd in _layers(cfg))


def forward_bytes(cfg, batch: int, queries: int, keys: int, act_bytes: int, attention: str,
                  full_mask: bool = True) -> int:
    """Peak of the tensors one forward holds at once, over its N = batch x queries tokens, for the three
    phases of a layer (the largest wins); counted from transformers 5.23's Gemma 4 / Llama layers:
      MLP     embedding output, layer input, attention residual, normed input (4 N x H) + gate/up
              activations (3 N x I: act(gate), up, their product)
      MoE     (Gemma 4) 6 N x H (the above, the dense-MLP output, its norm, the experts' input) + the
              grouped-mm experts over S = N x top_k routed rows: max(S x (H + 4 Im) at the gate,
              4 S x H at the down projection: gathered rows, down output, and the weighted and re-ordered
              rows, which are float32 because the routing weights are)
              + float32 router scores and probabilities (2 N x E)
      attention  3 N x H + q, its rotary temporaries and the output (3 N x heads x head_dim) + K and V
    With sdpa, transformers materialises a boolean (B, 1, q, keys) mask, and torch converts it to an
    additive one in the compute dtype inside the attention call (masks are needed for sliding windows,
    padding and bidirectional canvases); flash attention takes no mask, nor does dgbench's masked-diffusion
    denoiser, which passes a (B, 1, 1, keys) padding mask expanded as a view (`full_mask=False`)."""
    N, H = batch * queries, cfg.hidden_size
    layers = _layers(cfg)
    hd = max(h for _, _, h in layers)
    kv = max(k * h for _, k, h in layers)
    heads = cfg.num_attention_heads
    a = act_bytes
    mlp = (4 * N * H + 3 * N * cfg.intermediate_size) * a
    attn = (3 * N * H + 3 * N * heads * hd + 2 * N * kv) * a
    moe = 0
    if getattr(cfg, "enable_moe_block", False) or getattr(cfg, "num_experts", None):
        S, Im = N * cfg.top_k_experts, cfg.moe_intermediate_size
        # The routing weights are float32, so the weighted and re-ordered rows are float32 whatever `a` is.
        moe = 6 * N * H * a + max(S * (H + 4 * Im) * a, S * H * (2 * a + 2 * 4)) + 2 * N * cfg.num_experts * 4
    mask = batch * queries * keys if attention == "sdpa" and queries > 1 and full_mask else 0
    peak = max(mlp, moe, attn + mask * a) + mask
    return peak


def weight_bytes(spec: ModelSpec, dtype: str) -> tuple[int, str]:
    from dgbench.models.params import formula

    per, why = WEIGHT_FORMATS[dtype]
    counts = formula(spec)
    if dtype in KEPT_BF16:
        body = counts.total - counts.embedding
        return int(body * per + counts.embedding * 2), f"{why}; embedding table kept bf16"
    return int(counts.total * per), why


def estimate(spec: ModelSpec, *, batch: int, context: int, dtype: str = "bf16", prompt: int | None = None,
             attention: str = "sdpa", prefill_chunk: int | None = None) -> MemoryEstimate:
    """Peak memory of generating up to `context` tokens (prompt + generated) for `batch` sequences.
    `prefill_chunk` models a prefill in chunks of that many tokens (serving engines do; transformers'
    generate, which dgbench runs, prefills the whole prompt in one forward)."""
    from dgbench.models.synthetic import build_config

    if dtype not in WEIGHT_FORMATS:
        raise ValueError(f"unknown weight format {dtype!r}; one of {', '.join(WEIGHT_FORMATS)}")
    if attention not in ATTENTION:
        raise ValueError(f"unknown attention {attention!r}; one of {', '.join(ATTENTION)}")
    prompt = context if prompt is None else min(prompt, context)
    cfg = _text(build_config(spec))
    a = 4 if dtype == "fp32" else 2                    # activations and KV in the compute dtype
    V, kind = cfg.vocab_size, _kind(spec)
    weights, weights_note = weight_bytes(spec, dtype)
    notes = {"weights": weights_note}
    kept = 0

    if kind == "masked-diffusion":
        # No KV cache (LLaDA's sampler reruns every position); each step is a forward over the sequence.
        kv, prefill = 0, 0
        step = forward_bytes(cfg, batch, context, context, a, attention, full_mask=False)
        # Greedy (temperature 0): the model's logits, their float32 copy, softmax for the confidence.
        logits = batch * context * V * (4 * 2 + (a if a != 4 else 0))
        kept = batch * context * V * 4                  # the previous step's logits, alive through the forward
        notes.update(kv_cache="none: every step recomputes all positions (Fast-dLLM's caches would add it)",
                     step=f"one bidirectional forward over all {context} positions",
                     logits="(B, T, V): logits, float32 copy, softmax (greedy; temperature > 0 adds float64 "
                            "Gumbel buffers)")
    else:
        canvas = spec.canvas_length if kind == "block-diffusion" else 1
        appended = canvas
        kv = 0 if kind == "drafter" else kv_cache_bytes(cfg, batch, context, a, appended)
        prompt_kv = 0 if kind == "drafter" else kv_cache_bytes(cfg, batch, prompt, a, appended=prompt)
        chunk = min(prompt, prefill_chunk or prompt)
        prefill = max(0, prompt_kv - kv) + forward_bytes(cfg, batch, chunk, prompt, a, attention)
        if kind == "drafter":
            prefill = 0                                      # it drafts from the target's states, no prefill
        step = forward_bytes(cfg, batch, canvas, context, a, attention)
        if kind != "drafter":
            step += _largest_layer_kv(cfg, batch, context, a)   # cat of cached and new K/V, one layer at a time
        if kind == "block-diffusion":
            # dgbench-diffusion at its peak (token_entropy, or the float64 uniforms of decoding/multinomial.py,
            # the same size): the previous step's tempered logits and probs (kept for self-conditioning), this
            # step's logits (tempered in place), probs, and the entropy's normalised logits and softmax (clamp
            # and product in place): 6 float32 (B, canvas, V) buffers. The previous step's two stay alive
            # through the next forward.
            logits, kept = 6 * batch * canvas * V * 4, 2 * batch * canvas * V * 4
            notes["logits"] = f"6 float32 (B, {canvas}, V) buffers of the entropy-bound step, 2 live in the next"
        else:
            logits = batch * V * (a + 3 * 4)   # last position: logits, float32 copy, processed, probs
            notes["logits"] = "last position only: logits, float32 copy, processed scores, probs"
        notes.update(kv_cache=("none of its own: reads the target's (add the target's estimate)" if kind == "drafter" else
                               "K and V per layer; sliding layers keep the window (+ the last update)"),
                     prefill=(f"one forward over the {prompt}-token prompt" if chunk == prompt else
                              f"one {chunk}-token chunk of the {prompt}-token prompt") + " (+ its KV beyond the window)",
                     step=f"one forward over {canvas} quer{'y' if canvas == 1 else 'ies'} + one layer's cache concat")
    if attention == "sdpa" and kind != "masked-diffusion":
        notes["attention"] = "sdpa: boolean (B, 1, q, keys) masks + their additive copy in each attention call"
    return MemoryEstimate(model=spec.name, dtype=dtype, batch=batch, context=context, prompt=prompt,
                          attention=attention, weights=weights, kv_cache=kv, prefill_activations=prefill,
                          step_activations=step, logits=logits, logits_kept=kept, notes=notes)


def human_bytes(n: float) -> str:
    for scale, unit in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{int(n)} B"


def measure_peak_bytes(fn) -> tuple[int, object]:
    """(peak bytes of CPU tensors allocated while fn() runs, above what existed before; fn's result).

    Read from the allocator records of torch.profiler(profile_memory=True): each record carries the
    allocator's running total, so the peak counts exactly the tensors torch allocates (not the Python
    heap, not allocator caching, not RSS noise). The totals are process-wide, so the first record's
    total minus its own size is the baseline."""
    import json
    import os
    import tempfile

    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = fn()
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        prof.export_chrome_trace(path)
        with open(path) as f:
            events = json.load(f)["traceEvents"]
    finally:
        os.remove(path)
    records = sorted((e for e in events if e.get("name") == "[memory]" and e["args"].get("Device Type") == 0),
                     key=lambda e: e["ts"])
    if not records:
        return 0, result
    base = records[0]["args"]["Total Allocated"] - records[0]["args"]["Bytes"]
    return max(0, max(e["args"]["Total Allocated"] for e in records) - base), result
