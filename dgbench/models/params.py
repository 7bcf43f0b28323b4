"""Parameter accounting: total and active parameters, counted from a built module and from a closed-form
formula over the config. The test suite checks the two agree exactly for every spec.

Conventions, chosen to match how model cards count (Gemma 4 26B-A4B's card: 25.2B total, 3.8B active):
  * total: every parameter once; tied weights (the output head tied to the embedding, DiffusionGemma's
    encoder and decoder sharing every layer) are one parameter, as in the weight files.
  * active per token: everything except the routed experts, plus top_k / num_experts of the expert
    weights. The embedding table is counted in full (once when tied; embedding and head both when
    untied): the 3.8B on the card is reached only that way (without the 738M embedding it is 3.08B).
  * embedding: the unique embedding and output-head parameters; `active - embedding` is the
    non-embedding active count papers also quote (LLaDA: 6.98B of 8.02B).
Buffers (rotary tables, scalars) are not parameters and are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from dgbench.models.registry import ModelSpec


@dataclass(frozen=True)
class ParamCount:
    total: int
    active: int
    embedding: int      # unique embedding + output-head parameters
    experts: int        # routed-expert parameters (all experts), 0 for dense models

    @property
    def active_non_embedding(self) -> int:
        return self.active - self.embedding


def human(n: float | None, unit: str = "") -> str:
    """25_233_141_760 -> '25.2B' (B/M/K, one decimal; three significant digits under 10)."""
    if n is None:
        return "-"
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= scale:
            value = n / scale
            return f"{value:.2f}{suffix}{unit}" if value < 10 else f"{value:.1f}{suffix}{unit}"
    return f"{n:g}{unit}"


def _top_k_fraction(config) -> tuple[int, int]:
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    experts = getattr(text, "num_experts", None) or 0
    top_k = getattr(text, "top_k_experts", None) or 0
    return top_k, experts


# ---- counted from the module ----

def count_module(model) -> ParamCount:
    """Count a built module (meta or real): unique parameters by identity, experts found by module type."""
    import torch

    unique: dict[int, tuple[str, torch.nn.Parameter]] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        unique.setdefault(id(param), (name, param))
    experts_ids, embedding_ids = set(), set()
    for module in model.modules():
        kind = type(module).__name__
        if kind.endswith("TextExperts"):          # Gemma4TextExperts, DiffusionGemmaTextExperts
            experts_ids.update(id(p) for p in module.parameters(recurse=False))
        elif isinstance(module, torch.nn.Embedding):
            embedding_ids.add(id(module.weight))
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is not None:
        embedding_ids.add(id(head.weight))
    total = sum(p.numel() for _, p in unique.values())
    experts = sum(unique[i][1].numel() for i in experts_ids)
    embedding = sum(unique[i][1].numel() for i in embedding_ids)
    top_k, num_experts = _top_k_fraction(model.config)
    active = total - experts + (experts * top_k // num_experts if num_experts else 0)
    return ParamCount(total=total, active=active, embedding=embedding, experts=experts)


# ---- closed form from the config ----

def _gemma4_layer(cfg, i: int, *, kv_shared: bool, v_on_global: bool, moe: bool) -> tuple[int, int]:
    """(parameters, of which routed experts) of decoder layer i of a Gemma 4 text config.

    Attention: q and o projections and a q norm of the layer's head_dim; unless the layer reads another
    layer's K/V (the assistant), a k projection and k norm, and a v projection except on global layers
    whose V is their K (attention_k_eq_v); the v norm has no scale. Four norms around attention and MLP.
    MoE: a router (projection to E logits, a per-hidden scale, a per-expert scale; its norm has no scale),
    E experts of fused gate+up (2*Im x H) and down (H x Im), and three more norms."""
    H, nh = cfg.hidden_size, cfg.num_attention_heads
    layer = cfg.per_layer_config[i]
    hd, kv = layer.head_dim, layer.num_key_value_heads
    sliding = cfg.layer_types[i] == "sliding_attention"
    n = 2 * H * nh * hd + hd                                   # q_proj, o_proj, q_norm
    if not kv_shared:
        n += H * kv * hd + hd                                  # k_proj, k_norm
        if sliding or v_on_global:
            n += H * kv * hd                                   # v_proj
    n += 3 * H * cfg.intermediate_size + 4 * H                 # gated MLP, 4 norms
    experts = 0
    if moe:
        E, Im = cfg.num_experts, cfg.moe_intermediate_size
        experts = 3 * E * H * Im
        n += H * E + H + E + experts + 3 * H                   # router, experts, 3 norms
    return n, experts


def _gemma4_stack(cfg, *, kv_shared: bool, v_on_global: bool, moe: bool) -> tuple[int, int]:
    if getattr(cfg, "attention_bias", False) or getattr(cfg, "hidden_size_per_layer_input", 0):
        raise NotImplementedError("formula covers Gemma 4 text stacks without attention bias and without PLE")
    layers = [_gemma4_layer(cfg, i, kv_shared=kv_shared, v_on_global=v_on_global, moe=moe)
              for i in range(cfg.num_hidden_layers)]
    return sum(n for n, _ in layers) + cfg.hidden_size, sum(e for _, e in layers)   # + final norm


def _llama_like(cfg, qkv_bias: bool) -> tuple[int, int]:
    H, nh = cfg.hidden_size, cfg.num_attention_heads
    hd = getattr(cfg, "head_dim", None) or H // nh
    kv = cfg.num_key_value_heads or nh
    attn = 2 * H * nh * hd + 2 * H * kv * hd                    # q, o, k, v
    if qkv_bias or getattr(cfg, "attention_bias", False):
        attn += nh * hd + 2 * kv * hd + (H if getattr(cfg, "attention_bias", False) else 0)
    mlp = 3 * H * cfg.intermediate_size + (2 * cfg.intermediate_size + H if getattr(cfg, "mlp_bias", False) else 0)
    return cfg.num_hidden_layers * (attn + mlp + 2 * H) + H, 0


def formula(spec: ModelSpec, num_layers: int | None = None) -> ParamCount:
    """Closed-form counts from the spec's config (`num_layers` as in build_on_meta)."""
    from dgbench.models.synthetic import build_config

    config = build_config(spec, num_layers)
    cfg = config.get_text_config() if spec.architecture != "Gemma4AssistantForCausalLM" else config.text_config
    V, H = cfg.vocab_size, cfg.hidden_size
    tied = bool(getattr(config, "tie_word_embeddings", True))
    embedding = V * H * (1 if tied else 2)
    arch = spec.architecture
    if arch == "DiffusionGemmaForBlockDiffusion":
        # One stack shared by encoder and decoder; DiffusionGemma's global layers never have a v_proj.
        stack, experts = _gemma4_stack(cfg, kv_shared=False, v_on_global=False, moe=True)
        stack += H + 3 * H * cfg.intermediate_size             # decoder self-conditioning: pre-norm + MLP
    elif arch == "Gemma4ForCausalLM":
        stack, experts = _gemma4_stack(cfg, kv_shared=False, v_on_global=not cfg.attention_k_eq_v,
                                       moe=bool(cfg.enable_moe_block))
    elif arch == "Gemma4AssistantForCausalLM":
        stack, experts = _gemma4_stack(cfg, kv_shared=True, v_on_global=False, moe=False)
        B = config.backbone_hidden_size
        stack += 2 * B * H + H * B                             # pre_projection (2B -> H), post_projection
        if config.use_ordered_embeddings:
            stack += H * config.num_centroids
    elif arch in ("LlamaForCausalLM", "Qwen2ForCausalLM"):
        stack, experts = _llama_like(cfg, qkv_bias=arch == "Qwen2ForCausalLM")
    else:
        raise ValueError(f"{spec.name}: no parameter formula for {arch!r}")
    total = embedding + stack
    top_k, num_experts = _top_k_fraction(cfg)
    active = total - experts + (experts * top_k // num_experts if num_experts else 0)
    return ParamCount(total=total, active=active, embedding=embedding, experts=experts)
