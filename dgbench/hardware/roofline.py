"""The roofline: FLOPs and bytes of each forward pass of a generate call, the time the hardware needs at
best, and how close a measured point came (MFU, MBU). Imports no torch: report/ and gate can call it.

Model (Williams, Waterman & Patterson, "Roofline", CACM 2009): a forward takes at least
max(FLOPs / peak FLOP/s, bytes / memory bandwidth). Per forward, not per call: a generate call mixes a
compute-heavy prefill with memory-bound steps, and summing the per-forward maxima keeps each one on
its own side of the ridge. A measured CPU profile adds a per-forward floor (the fixed cost of a forward,
measured as a one-token forward of the model's layer stack with a tiny vocabulary, and the sampler's
per-logit work such as random draws; eager PyTorch on a CPU runs them one after the other with the math,
so the floor adds, and is labelled).

FLOPs: 2 per multiply-accumulate of every weight a token passes through (attention projections, dense
MLP, router, the top-k experts it is routed to, the LM head for rows whose logits are computed), plus
attention itself, 4 x heads x head_dim per query-key pair (QK^T and PV), with sliding layers seeing at
most their window (as in Kaplan et al. 2020, Sec. 2.1, and the PaLM MFU appendix, per layer type).
Bytes: every weight read once per forward, except routed experts: with N tokens routed top-k of E, the
expected number of experts touched is E (1 - (1 - k/E)^N) (uniform routing), so one AR token reads k
experts and a 256-token denoising canvas reads nearly all of them; the KV cache read over each layer's
window and the new K/V written; the logits written, plus one float32 copy written and read by the sampler.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from dgbench.models.registry import ModelSpec

DTYPE_PEAK = {"float32": "fp32", "bfloat16": "bf16", "float16": "bf16"}   # fp16 and bf16 tensor rates are equal
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass(frozen=True)
class Layer:
    sliding: bool
    kv_heads: int
    head_dim: int
    has_v: bool               # Gemma 4's K=V global layers have no v_proj


@dataclass(frozen=True)
class Geometry:
    name: str
    hidden: int
    heads: int
    vocab: int
    layers: tuple[Layer, ...]
    window: int | None
    dense_ffn: int            # gated MLP width (0: none)
    experts: int = 0
    top_k: int = 0
    expert_ffn: int = 0
    tied: bool = True
    self_cond_ffn: int = 0    # DiffusionGemma's decoder: a self-conditioning MLP per canvas token

    def layer_params(self, layer: Layer) -> tuple[int, int]:
        """(matmul weights every token uses, weights of one routed expert) of one layer."""
        H = self.hidden
        qo = 2 * H * self.heads * layer.head_dim
        kv = H * layer.kv_heads * layer.head_dim * (2 if layer.has_v else 1)
        shared = qo + kv + 3 * H * self.dense_ffn + H * self.experts   # + router
        return shared, 3 * H * self.expert_ffn

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied else 2)

    def active_matmul_params(self) -> int:
        """Weights one token multiplies (no embedding lookup, no LM head, no norms)."""
        total = 0
        for layer in self.layers:
            shared, expert = self.layer_params(layer)
            total += shared + self.top_k * expert
        return total


def geometry(spec: ModelSpec) -> Geometry:
    """The spec's text geometry, read from its config dict (transformers' defaults where the spec is silent)."""
    c = spec.text_config
    H, nh, L = c["hidden_size"], c["num_attention_heads"], c["num_hidden_layers"]
    hd = c.get("head_dim") or H // nh
    kv = c.get("num_key_value_heads") or nh
    if spec.architecture == "Gemma4AssistantForCausalLM":
        # Its layers read the target's K/V and it adds projections to and from the target's width; it only
        # ever runs inside speculative decoding, which the roofline does not model.
        raise ValueError(f"{spec.name}: a speculative drafter; the roofline models targets only")
    if spec.architecture in ("DiffusionGemmaForBlockDiffusion", "Gemma4ForCausalLM"):
        diffusion = spec.architecture == "DiffusionGemmaForBlockDiffusion"
        k_eq_v = bool(c.get("attention_k_eq_v")) or diffusion    # DiffusionGemma's global layers are K=V by construction
        types = c.get("layer_types") or [(i + 1) % 6 != 0 for i in range(L)]   # 5 sliding : 1 full (Gemma4TextConfig)
        sliding = [t == "sliding_attention" if isinstance(t, str) else t for t in types]
        sliding[-1] = False                                   # transformers forces the last layer full
        g_kv = (c.get("num_global_key_value_heads") or kv) if k_eq_v else kv
        g_hd = c.get("global_head_dim") or hd
        layers = tuple(Layer(True, kv, hd, True) if s else Layer(False, g_kv, g_hd, not k_eq_v) for s in sliding)
        experts = c.get("num_experts") or 0
        return Geometry(spec.name, H, nh, c["vocab_size"], layers, c.get("sliding_window"), c["intermediate_size"],
                        experts, c.get("top_k_experts") or 0, c.get("moe_intermediate_size") or 0,
                        tied=c.get("tie_word_embeddings", True),
                        self_cond_ffn=c["intermediate_size"] if diffusion else 0)
    layers = tuple(Layer(False, kv, hd, True) for _ in range(L))   # Llama / Qwen2: every layer global
    return Geometry(spec.name, H, nh, c["vocab_size"], layers, None, c["intermediate_size"],
                    tied=c.get("tie_word_embeddings", True))


# ---------------------------------------------------------------- one forward pass

@dataclass(frozen=True)
class Forward:
    kind: str                 # prefill | decode | denoise | encode | masked
    tokens: int               # query tokens per sequence
    keys_before: int          # tokens already in the cache (or context) before these queries
    causal: bool              # causal among the queries, or bidirectional (a canvas)
    logits_rows: int          # rows per sequence whose logits are computed
    self_cond: bool = False


def _sum_min(a: int, q: int, cap: int | None) -> int:
    """sum over j in (a, a+q] of min(j, cap): keys seen by q causal queries after a cached tokens."""
    hi = a + q
    if cap is None or hi <= cap:
        return (a + 1 + hi) * q // 2
    lo_end = max(a, min(hi, cap))
    below = (a + 1 + lo_end) * (lo_end - a) // 2 if lo_end > a else 0
    return below + (hi - lo_end) * cap


def forward_cost(g: Geometry, f: Forward, batch: int, weight_bytes: float, act_bytes: int) -> tuple[float, float]:
    """(FLOPs, bytes) of one forward over `batch` sequences."""
    n = batch * f.tokens
    H = g.hidden
    flops = 0.0
    wbytes = 0.0
    kv_bytes = 0.0
    touched = g.experts * (1 - (1 - g.top_k / g.experts) ** n) if g.experts else 0.0
    for layer in g.layers:
        shared, expert = g.layer_params(layer)
        flops += 2 * n * (shared + g.top_k * expert)
        wbytes += (shared + touched * expert) * weight_bytes
        cap = g.window if layer.sliding else None
        if f.causal:
            pairs = _sum_min(f.keys_before, f.tokens, cap)
        else:
            keys = f.keys_before + f.tokens
            pairs = f.tokens * (min(keys, cap) if cap else keys)
        flops += 4 * batch * pairs * g.heads * layer.head_dim
        keys_read = min(f.keys_before + f.tokens, cap) if cap else f.keys_before + f.tokens
        per_token_kv = 2 * layer.kv_heads * layer.head_dim * act_bytes    # K and V stored apart even when K=V
        kv_bytes += batch * (keys_read + f.tokens) * per_token_kv           # read the window, write the new ones
    if f.self_cond:
        # DiffusionGemma's self-conditioning: the previous step's probabilities times the embedding table
        # (soft embeddings, (B, C, V) @ (V, H)), then a gated MLP (modeling_diffusion_gemma.py).
        flops += 2 * n * g.vocab * H + 2 * n * 3 * H * g.self_cond_ffn
        wbytes += (g.vocab * H + 3 * H * g.self_cond_ffn) * weight_bytes
    rows = batch * f.logits_rows
    if rows:
        flops += 2 * rows * g.vocab * H
        wbytes += g.vocab * H * weight_bytes                                 # the LM head (tied: the embedding)
    wbytes += n * H * weight_bytes                                           # embedding rows looked up
    logits_bytes = rows * g.vocab * (act_bytes + 2 * 4)
    return flops, wbytes + kv_bytes + logits_bytes


# ---------------------------------------------------------------- one generate call

def call_forwards(spec: ModelSpec, engine: str, prompt: int, gen: int, *, canvas: int | None = None,
                  steps_per_canvas: float | None = None, nfe: float | None = None) -> list[tuple[Forward, float]]:
    """The forwards of one generate call as (forward, how many times), by paradigm.

    AR: one prefill over the prompt (logits of the last position only, as generate computes them), then
    one single-token decode step per further token. Block diffusion (DiffusionGemma): the encoder
    prefills the prompt; each canvas takes `steps_per_canvas` bidirectional denoising forwards over the
    canvas (logits for every canvas position, self-conditioning MLP), and every canvas but the last is
    then encoded once into the cache. Masked diffusion without a cache (LLaDA): `nfe` forwards over the
    whole sequence."""
    if spec.paradigm == "autoregressive":
        out = [(Forward("prefill", prompt, 0, True, 1), 1.0)]
        out += [(Forward("decode", 1, prompt + t - 1, True, 1), 1.0) for t in range(1, gen)]
        return out
    if spec.architecture == "DiffusionGemmaForBlockDiffusion":
        canvas = canvas or spec.canvas_length
        n_canvas = math.ceil(gen / canvas)
        steps = steps_per_canvas if steps_per_canvas is not None else (nfe / n_canvas if nfe else 48)
        out = [(Forward("prefill", prompt, 0, True, 0), 1.0)]
        for c in range(n_canvas):
            before = prompt + c * canvas
            out.append((Forward("denoise", canvas, before, False, canvas, self_cond=True), float(steps)))
            if c < n_canvas - 1:
                out.append((Forward("encode", canvas, before, True, 0), 1.0))
        return out
    total = prompt + gen
    return [(Forward("masked", total, 0, False, total), float(nfe or gen))]


@dataclass
class CallCost:
    flops: float = 0.0
    bytes: float = 0.0
    forwards: float = 0.0
    compute_s: float = 0.0      # sum over forwards of FLOPs / peak
    memory_s: float = 0.0       # sum over forwards of bytes / bandwidth
    floor_s: float = 0.0        # sum of the per-forward floor (measured profiles)
    predicted_s: float = 0.0
    by_kind: dict = field(default_factory=dict)

    @property
    def bound(self) -> str:
        return "compute" if self.compute_s >= self.memory_s else "memory"


def call_cost(g: Geometry, forwards, batch: int, dtype: str, peak_flops: float | None = None,
              bandwidth: float | None = None, floor_s=0.0) -> CallCost:
    """FLOPs and bytes of a call; with a peak and a bandwidth, also the predicted time. `floor_s`: seconds
    per forward, or a function (tokens in the forward, logit elements it samples from) giving them."""
    floor_of = floor_s if callable(floor_s) else (lambda tokens, logits: floor_s)
    peak_of = peak_flops if callable(peak_flops) else (lambda tokens: peak_flops)
    wb = DTYPE_BYTES[dtype]
    cost = CallCost()
    for f, count in forwards:
        flops, nbytes = forward_cost(g, f, batch, wb, wb)
        cost.flops += flops * count
        cost.bytes += nbytes * count
        cost.forwards += count
        k = cost.by_kind.setdefault(f.kind, {"forwards": 0.0, "flops": 0.0, "bytes": 0.0})
        k["forwards"] += count
        k["flops"] += flops * count
        k["bytes"] += nbytes * count
        if peak_flops and bandwidth:
            c, m = flops / peak_of(batch * f.tokens), nbytes / bandwidth
            fl = floor_of(batch * f.tokens, batch * f.logits_rows * g.vocab)
            cost.compute_s += c * count
            cost.memory_s += m * count
            cost.floor_s += fl * count
            cost.predicted_s += (fl + max(c, m)) * count
    return cost


def profile_peak(profile: dict, dtype: str) -> float | None:
    return (profile.get("peak_flops") or {}).get(DTYPE_PEAK[dtype])


# ---------------------------------------------------------------- a measured point against the roof

SPECULATIVE_KNOBS = ("assistant_model", "prompt_lookup_num_tokens")


def point_forwards(record: dict, spec: ModelSpec):
    """(forwards, batch, note) of a measured latency/throughput point, or (None, None, why not)."""
    knobs = record.get("knobs") or {}
    if any(knobs.get(k) for k in SPECULATIVE_KNOBS):
        return None, None, "speculative decoding: draft and verification forwards are not modelled"
    summary = record.get("summary") or {}
    params = record["params"]

    def med(name):
        s = summary.get(name)
        return s["median"] if s and s.get("n") else None

    note = None
    if record.get("engine") == "dgbench-masked" and knobs.get("cache") not in (None, "none"):
        note = "approximate: masked diffusion modelled without its KV-cache approximation"
    steps = summary.get("steps_per_canvas", {}).get("mean") if summary.get("steps_per_canvas") else None
    forwards = call_forwards(spec, record.get("engine", ""), params["prompt_length"], params["gen_length"],
                             canvas=record.get("canvas_length"), steps_per_canvas=steps, nfe=med("nfe"))
    return forwards, params["batch_size"], note


def evaluate_point(record: dict, spec: ModelSpec, profile: dict, profiles: dict[str, dict],
                   floor_s=0.0, compute_roof=None) -> dict | None:
    """The `roofline` block of a point record: cost per call, MFU/MBU against `profile` (the run's), the
    prediction on it, and projected tok/s on every profile (always labelled projected). A measured CPU
    profile passes `floor_s` (a function, see call_cost) and `compute_roof` (FLOP/s as a function of the
    forward's tokens, measured at the model's GEMM shape); MFU stays against the profile's peak."""
    if record.get("status") != "ok" or "summary" not in record or record.get("params", {}).get("task"):
        return None
    forwards, batch, note = point_forwards(record, spec)
    if forwards is None:
        return {"profile": profile.get("name"), "skipped": note}
    dtype = record["dtype"]
    g = geometry(spec)
    peak, bw = profile_peak(profile, dtype), profile.get("memory_bandwidth_bytes_s")
    own = call_cost(g, forwards, batch, dtype, compute_roof or peak, bw, floor_s)
    measured_s = record["summary"]["e2e_s"]["median"]
    useful = record["summary"]["useful_tokens"]["median"]
    achieved_f, achieved_b = own.flops / measured_s, own.bytes / measured_s
    projected = {}
    for name, prof in profiles.items():
        p_peak, p_bw = profile_peak(prof, dtype), prof.get("memory_bandwidth_bytes_s")
        if name == profile.get("name"):
            cost = own
        elif p_peak and p_bw:
            cost = call_cost(g, forwards, batch, dtype, p_peak, p_bw)
        else:
            projected[name] = {"tok_s": None, "bound": None,
                               "why": f"profile has no {DTYPE_PEAK[dtype]} peak or no bandwidth"}
            continue
        projected[name] = {"tok_s": useful / cost.predicted_s if cost.predicted_s else None, "bound": cost.bound,
                           "dtype": dtype}
    out = {
        "profile": profile.get("name"),
        "profile_kind": profile.get("profile_kind", "published"),
        "dtype": dtype,
        "forwards_per_call": own.forwards,
        "flops_per_call": own.flops,
        "bytes_per_call": own.bytes,
        "arithmetic_intensity": own.flops / own.bytes if own.bytes else None,
        "achieved_flop_s": achieved_f,
        "achieved_bytes_s": achieved_b,
        "mfu": achieved_f / peak if peak else None,
        "mbu": achieved_b / bw if bw else None,
        "predicted_s": own.predicted_s or None,
        "measured_s": measured_s,
        "predicted_over_measured": own.predicted_s / measured_s if own.predicted_s else None,
        "bound": own.bound if own.predicted_s else None,
        "compute_s": own.compute_s, "memory_s": own.memory_s, "floor_s": own.floor_s,
        "floor_s_per_forward": own.floor_s / own.forwards if own.forwards else 0.0,
        "by_kind": own.by_kind,
        "projected": projected,
        "projected_note": "projected = useful tokens / roofline time of the same forwards on that profile "
                          "(published peaks, no overheads): an upper bound, not a measurement",
    }
    if note:
        out["note"] = note
    return out
