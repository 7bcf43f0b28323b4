"""A lean inference forward of DiffusionGemma's decoder stack: transformers' weights, transformers' ops.

`DiffusionGemmaDecoderTextLayer.forward` (transformers 5.23/5.24, modeling_diffusion_gemma.py) spends a
good part of a small model's step in Python rather than in kernels: about forty module calls per layer,
the `deprecate_kwarg` wrapper on every layer and attention call, the experts-interface lookup and
`_can_use_grouped_mm`'s version checks on every expert call, config attribute lookups through the
heterogeneity config, and a fresh tensor for every intermediate. On the 2-core CPU that is roughly a
third of a decoder layer's time at `diffusiongemma-small` (profiled in issue 23).

`LeanDecoderStack` runs the same layers with the same tensors and the same ATen ops in the same order,
so every intermediate is bit-identical to the module path; it only drops what computes nothing:

- each RMSNorm is `x.pow(2).mean(-1, keepdim=True) + eps`, `x * ms ** -0.5`, `* weight` exactly as
  `DiffusionGemmaRMSNorm`, with the scalar add, power and weight multiply done in place on the fresh
  temporaries (same kernels, fewer allocations); `.float()` / `.type_as()` are kept and cost nothing
  when the model is float32;
- rotary embedding is transformers' `(x * cos) + (rotate_half(x) * sin)` with cos/sin unsqueezed once
  per canvas;
- attention calls the very attention interface the module would (`ALL_ATTENTION_FUNCTIONS`, e.g. sdpa)
  with the same arguments, after concatenating the read-only encoder KV cache as `append_to_cache` does;
- the MoE block is `grouped_mm_experts_forward` (transformers/integrations/moe.py) for its non-expert-
  parallel, bias-free, gated case: the same sort, `histc` offsets and one `torch._grouped_mm` (or
  `torch.nn.functional.grouped_mm`) per projection, i.e. each expert's matmul is the very same kernel
  call; the dispatch check is made once instead of per call.

Anything else (training mode, gradients, hooks, another experts implementation, a static cache, a
module class it does not know) is refused by `LeanDecoderStack.supports`, and the caller keeps
transformers' modules. tests/test_lean_forward.py checks tokens and logits against the module path.
"""

from __future__ import annotations

import torch


def rms_norm(x: torch.Tensor, weight: torch.Tensor | None, eps: float) -> torch.Tensor:
    """DiffusionGemmaRMSNorm.forward, op for op (its `_norm` then the optional float weight)."""
    xf = x.float()
    ms = xf.pow(2).mean(-1, keepdim=True).add_(eps)
    out = xf * ms.pow_(-0.5)
    if weight is not None:
        out.mul_(weight)                  # the module multiplies by `weight.float()`: the same tensor in fp32
    return out.type_as(x)


def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """apply_rotary_pos_emb with cos/sin already unsqueezed on the heads axis: x*cos + rotate_half(x)*sin."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return (x * cos).add_(rotated.mul_(sin))


def norm_eps(norm) -> float:
    """DiffusionGemmaRMSNorm's epsilon: `eps` up to transformers 5.24, `variance_epsilon` from 5.25 (the
    same ops in the same order in both); AttributeError where neither exists (supports() then refuses)."""
    return norm.eps if hasattr(norm, "eps") else norm.variance_epsilon


class _Layer:
    """The tensors and constants of one DiffusionGemmaDecoderTextLayer, looked up once."""

    def __init__(self, layer):
        a = layer.self_attn
        self.eps = norm_eps(layer.input_layernorm)
        self.attn = a
        self.head_dim = a.head_dim
        self.wq, self.wk, self.wo = a.q_proj.weight, a.k_proj.weight, a.o_proj.weight
        self.bq, self.bk, self.bo = a.q_proj.bias, a.k_proj.bias, a.o_proj.bias
        self.wv = a.v_proj.weight if a.v_proj is not None else None
        self.bv = a.v_proj.bias if a.v_proj is not None else None
        self.q_norm, self.k_norm = a.q_norm.weight.float(), a.k_norm.weight.float()
        self.attn_kwargs = dict(dropout=0.0, scaling=a.scaling, sliding_window=a.sliding_window,
                                is_causal=a.is_causal)
        self.ln_in = layer.input_layernorm.weight.float()
        self.ln_post_attn = layer.post_attention_layernorm.weight.float()
        self.ln_pre_ff = layer.pre_feedforward_layernorm.weight.float()
        self.ln_post_ff = layer.post_feedforward_layernorm.weight.float()
        self.ln_post_ff1 = layer.post_feedforward_layernorm_1.weight.float()
        self.ln_post_ff2 = layer.post_feedforward_layernorm_2.weight.float()
        self.ln_pre_ff2 = layer.pre_feedforward_layernorm_2.weight.float()
        m = layer.mlp
        self.w_gate, self.w_up, self.w_down, self.mlp_act = m.gate_proj.weight, m.up_proj.weight, \
            m.down_proj.weight, m.act_fn
        r = layer.router
        self.router_eps, self.router_scale, self.router_root = norm_eps(r.norm), r.scale, r.scalar_root_size
        self.router_w, self.per_expert_scale, self.top_k = r.proj.weight, r.per_expert_scale, r.config.top_k_experts
        e = layer.experts
        self.num_experts, self.expert_act = e.num_experts, e.act_fn
        # (E, in, out) views, as _grouped_linear passes them for non-transposed weights
        self.gate_up_t, self.down_t = e.gate_up_proj.transpose(-2, -1), e.down_proj.transpose(-2, -1)
        self.layer_scalar = layer.layer_scalar


def _grouped_mm_fn():
    return torch.nn.functional.grouped_mm if hasattr(torch.nn.functional, "grouped_mm") else torch._grouped_mm


class LeanDecoderStack:
    """DiffusionGemma's decoder layers (or, with `writes_cache`, its encoder's) as plain tensor code (see the
    module docstring). The encoder's layers differ only in their attention: it appends its keys and values to
    the cache (`cache.update`, as DiffusionGemmaEncoderTextAttention) instead of reading it."""

    def __init__(self, layers, attention_fn, writes_cache: bool = False):
        self.layers = [_Layer(layer) for layer in layers]
        self.attention_fn = attention_fn
        self.grouped_mm = _grouped_mm_fn()
        self.writes_cache = writes_cache

    @staticmethod
    def supports(model, cache, encoder: bool = False) -> bool:
        """True where the lean path is known to run exactly the module path's ops."""
        from transformers.integrations import moe
        from transformers.models.diffusion_gemma import modeling_diffusion_gemma as m

        text = model.config.text_config
        layers = (model.model.encoder.language_model if encoder else model.model.decoder).layers
        layer_class, attention_class = ((m.DiffusionGemmaEncoderTextLayer, m.DiffusionGemmaEncoderTextAttention)
                                        if encoder else
                                        (m.DiffusionGemmaDecoderTextLayer, m.DiffusionGemmaDecoderTextAttention))
        if torch.is_grad_enabled() or model.training or cache is None or cache.is_compileable:
            return False
        if getattr(text, "_experts_implementation", None) != "grouped_mm":
            return False
        for layer in layers[:text.num_hidden_layers]:
            e = layer.experts
            if (type(layer) is not layer_class or e.has_bias or not e.has_gate
                    or e.is_transposed or not e.is_concatenated or e.has_post_expert_norm or e._is_expert_parallel
                    or type(layer.self_attn) is not attention_class or layer.router.norm.with_scale):
                return False
            try:
                norm_eps(layer.input_layernorm), norm_eps(layer.router.norm)
            except AttributeError:        # a norm this stack does not know: keep transformers' modules
                return False
            # The experts' grouped kernel must be the one transformers dispatches to. Checked once here, not per
            # call: from torch 2.11 on the CPU check no longer depends on the input's alignment.
            if e.down_proj.device.type == "cpu" and moe.is_torch_less_or_equal("2.10.0", accept_dev=True):
                return False
            if not moe._can_use_grouped_mm(e.down_proj, e.down_proj, None):
                return False
            for mod in layer.modules():
                if mod._forward_hooks or mod._forward_pre_hooks:
                    return False
        return True

    def __call__(self, hidden: torch.Tensor, rope_tables: dict, masks: dict, layer_types, positions, cache):
        for i, lay in enumerate(self.layers):
            kind = layer_types[i]
            cos, sin = rope_tables[kind]
            hidden = self._layer(lay, hidden, cos, sin, masks[kind], positions, cache, i)
        return hidden

    def prefill(self, hidden: torch.Tensor, rope_tables: dict, masks: dict, layer_types, positions, cache) -> None:
        """The encoder's forward for its cache only: what generate keeps of it is the keys and values each layer
        appends, so the last layer stops once it has appended them (its attention output, MLP, MoE and the
        final norm feed nothing), and the KV of every layer is what the full forward writes."""
        *body, last = self.layers
        for i, lay in enumerate(body):
            cos, sin = rope_tables[layer_types[i]]
            hidden = self._layer(lay, hidden, cos, sin, masks[layer_types[i]], positions, cache, i)
        cos, sin = rope_tables[layer_types[len(body)]]
        self._keys_values(last, rms_norm(hidden, last.ln_in, last.eps), cos, sin, positions, cache, len(body))

    def _keys_values(self, lay: _Layer, x, cos, sin, positions, cache, index: int):
        """Keys and values of the canvas (B, KV heads, L, head_dim) with the cached prefix in front: read from
        the cache (decoder, `append_to_cache` for a dynamic cache) or appended to it (encoder, `cache.update`)."""
        B, L, _ = x.shape
        shape = (B, L, -1, lay.head_dim)
        k = torch.nn.functional.linear(x, lay.wk, lay.bk).view(shape)
        v = torch.nn.functional.linear(x, lay.wv, lay.bv).view(shape) if lay.wv is not None else k
        k = rope(rms_norm(k, lay.k_norm, lay.eps), cos, sin).transpose(1, 2)
        v = rms_norm(v, None, lay.eps).transpose(1, 2)
        if self.writes_cache:
            return cache.update(k, v, index, kwargs={"position_ids": positions})
        cache_layer = cache.layers[index]
        return torch.cat([cache_layer.keys, k], dim=-2), torch.cat([cache_layer.values, v], dim=-2)

    def _attention(self, lay: _Layer, x, cos, sin, mask, positions, cache, index: int):
        """DiffusionGemma{Decoder,Encoder}TextAttention.forward (non-compileable cache)."""
        B, L, _ = x.shape
        q = rms_norm(torch.nn.functional.linear(x, lay.wq, lay.bq).view(B, L, -1, lay.head_dim), lay.q_norm, lay.eps)
        q = rope(q, cos, sin).transpose(1, 2)
        k, v = self._keys_values(lay, x, cos, sin, positions, cache, index)
        out, _ = self.attention_fn(lay.attn, q, k, v, mask, position_ids=positions, **lay.attn_kwargs)
        out = out.reshape(B, L, -1).contiguous()
        return torch.nn.functional.linear(out, lay.wo, lay.bo)

    def _experts(self, lay: _Layer, x, top_k_index, top_k_weights):
        """grouped_mm_experts_forward without expert parallelism, biases or a post-expert norm."""
        # Row gathers and scatters are exact copies, so `index_select` / `index_copy_` stand in for the
        # reference's advanced indexing (`x[perm // k]`, `out[inv_perm]` with `inv_perm[perm] = arange`): the
        # same rows in the same places, at a fraction of the dispatch cost on the CPU.
        num_tokens, top_k = x.shape[0], top_k_index.shape[-1]
        sample_weights = top_k_weights.reshape(-1)
        expert_ids, perm = torch.sort(top_k_index.reshape(-1))
        selected = x.index_select(0, perm // top_k)
        sample_weights = sample_weights.index_select(0, perm)
        histc_input = expert_ids.float() if x.device.type in ("cpu", "mps") else expert_ids.int()
        counts = torch.histc(histc_input, bins=lay.num_experts, min=0, max=lay.num_experts - 1)
        offsets = torch.cumsum(counts, dim=0, dtype=torch.int32)
        proj = self.grouped_mm(selected.to(lay.gate_up_t.dtype), lay.gate_up_t, offs=offsets)
        gate, up = proj.chunk(2, dim=-1)
        proj = lay.expert_act(gate) * up
        proj = self.grouped_mm(proj.to(lay.down_t.dtype), lay.down_t, offs=offsets)
        weighted = proj * sample_weights.unsqueeze(-1)
        weighted = torch.empty_like(weighted).index_copy_(0, perm, weighted)         # back to token order
        return weighted.view(num_tokens, top_k, x.shape[-1]).sum(dim=1).to(x.dtype)

    def _layer(self, lay: _Layer, hidden, cos, sin, mask, positions, cache, index: int):
        """DiffusionGemma{Decoder,Encoder}TextLayer.forward: attention, then the dense MLP and the MoE side by side."""
        eps = lay.eps
        residual = hidden
        h = self._attention(lay, rms_norm(hidden, lay.ln_in, eps), cos, sin, mask, positions, cache, index)
        hidden = residual + rms_norm(h, lay.ln_post_attn, eps)

        residual = hidden
        h = rms_norm(hidden, lay.ln_pre_ff, eps)
        f = torch.nn.functional.linear
        h = f(lay.mlp_act(f(h, lay.w_gate)) * f(h, lay.w_up), lay.w_down)
        dense = rms_norm(h, lay.ln_post_ff1, eps)

        flat = residual.reshape(-1, residual.shape[-1])
        expert_in = rms_norm(flat, lay.ln_pre_ff2, eps)
        # DiffusionGemmaTextRouter.forward
        r = rms_norm(flat, None, lay.router_eps) * lay.router_scale * lay.router_root
        probs = torch.nn.functional.softmax(f(r, lay.router_w), dim=-1, dtype=torch.float32)
        top_w, top_i = torch.topk(probs, k=lay.top_k, dim=-1)
        top_w /= top_w.sum(dim=-1, keepdim=True)
        top_w = top_w * lay.per_expert_scale[top_i]          # (T, k) from (E,): kept as the reference indexes
        moe = self._experts(lay, expert_in, top_i, top_w).reshape(residual.shape)
        moe = rms_norm(moe, lay.ln_post_ff2, eps)

        hidden = residual + rms_norm(dense + moe, lay.ln_post_ff, eps)
        hidden *= lay.layer_scalar
        return hidden
