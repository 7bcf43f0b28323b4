"""DiffusionGemma under dgbench's own canvas loop: transformers' encoder and decoder modules, our loop.

The adapter calls transformers' modules (encoder, decoder layers, norms, lm_head) so the numbers are
theirs, and leaves out what a step does not need to redo: the rotary tables and attention masks are
built once per canvas instead of once per step, the self-conditioning softmax reuses the probabilities
the sampler already computed (exactly the same op on the same input in float32), and the entropy is
computed once per step rather than once for acceptance and again for stopping.
"""

from __future__ import annotations

from dataclasses import dataclass

from dgbench.backends.base import (CanvasCostMixin, Decoder, GenerationRecord, InPlaceFillMixin, register_engine,
                                   steps_between, stream_rows, useful_length)
from dgbench.backends.hf_diffusion import DIFFUSIONGEMMA_KNOBS
from dgbench.compat import cache_arg, cache_kwarg
from dgbench.validation import Field


@dataclass
class _CanvasContext:
    masks: dict
    rope: dict
    positions: object
    rope_heads: dict          # the lean stack's cos/sin, unsqueezed on the heads axis once per canvas


def _on_heads_axis(rope: dict) -> dict:
    """Rotary (cos, sin) per layer type, (B, L, head_dim) -> (B, L, 1, head_dim): the lean stack's layout,
    made once per canvas (or prompt) instead of once per layer and step."""
    return {t: (cos.unsqueeze(2), sin.unsqueeze(2)) for t, (cos, sin) in rope.items()}


class DiffusionGemmaDenoiser:
    """CanvasDenoiser over a transformers DiffusionGemmaForBlockDiffusion."""

    def __init__(self, model, compile: bool = False):
        import torch

        self.model = model
        self.encoder = model.model.encoder
        self.decoder = model.model.decoder
        self.text_config = model.config.text_config
        self.layer_types = self.text_config.layer_types
        self.n_layers = self.text_config.num_hidden_layers
        # Looked up once, not per layer call: the keyword is a constant of the installed transformers.
        self.layer_cache_kwarg = cache_kwarg(self.decoder.layers[0])
        self.softcap = model.final_logit_softcapping
        self.emb_dtype = self.decoder.embed_tokens.weight.dtype
        self.reuse_probs = self.emb_dtype == torch.float32
        self.cache = None
        self.lean = self.lean_encoder = None
        self.compile = compile
        if compile:
            # Compile the whole denoising forward once per model (kept on the model, as transformers does
            # for its own compiled generate). dynamic=True: the cached prefix grows canvas by canvas and
            # must not trigger a recompile each time. Identity of the resulting tokens with the eager path
            # is not guaranteed by construction (fused kernels may round differently); the benchmark and
            # tests check it run by run.
            # Only the layer stack and head are compiled: the self-conditioning input is None on a canvas's
            # first step, and a branch inside the graph would cost a recompile per canvas.
            if not hasattr(model, "_dgbench_compiled_stack"):
                model._dgbench_compiled_stack = torch.compile(DiffusionGemmaDenoiser._stack, dynamic=True)
            self._stack_fn = model._dgbench_compiled_stack
        else:
            self._stack_fn = DiffusionGemmaDenoiser._stack

    def begin(self, batch_size: int, max_length: int) -> None:
        from transformers import DynamicCache

        from dgbench.backends.diffusiongemma_lean import LeanDecoderStack

        self.cache = DynamicCache(config=self.model.config.get_text_config(decoder=True))
        # Inference without compile runs the decoder layers through the lean stack (same weights, same ops in the
        # same order: bit-identical, less Python per step); anything it does not know keeps transformers' modules.
        # The encoder likewise, for the cache it writes (its hidden output is never read).
        if not self.compile and LeanDecoderStack.supports(self.model, self.cache):
            from transformers.models.diffusion_gemma import modeling_diffusion_gemma as m

            attention = m.ALL_ATTENTION_FUNCTIONS.get_interface(self.text_config._attn_implementation,
                                                                 m.eager_attention_forward)
            self.lean = LeanDecoderStack(self.decoder.layers[:self.n_layers], attention)
            if LeanDecoderStack.supports(self.model, self.cache, encoder=True):
                text_encoder = self.encoder.language_model
                self.lean_encoder = LeanDecoderStack(text_encoder.layers[:self.n_layers], attention, writes_cache=True)

    def encode(self, input_ids, attention_mask, position_ids) -> None:
        import torch

        ids = input_ids.clone(memory_format=torch.contiguous_format)
        dummy = torch.empty((ids.shape[0], ids.shape[1], 0), dtype=self.model.dtype, device=ids.device)
        build = self.encoder.create_masks_for_generate
        masks = build(config=self.model.config, inputs_embeds=dummy, attention_mask=attention_mask,
                      **cache_arg(build, self.cache), position_ids=position_ids)
        if self.lean_encoder is not None:
            # DiffusionGemmaEncoderModel.forward for text: embed, rotary tables per layer type, the layers.
            text_encoder = self.encoder.language_model
            hidden = self.encoder.get_input_embeddings()(ids)                      # (B, T, D)
            rope = _on_heads_axis({t: text_encoder.rotary_emb(hidden, position_ids, t) for t in set(self.layer_types)})
            self.lean_encoder.prefill(hidden, rope, masks, self.layer_types, position_ids, self.cache)
            return
        self.encoder(input_ids=ids, attention_mask=masks, **cache_arg(self.encoder, self.cache),
                     position_ids=position_ids)

    def canvas_context(self, decoder_attention_mask, position_ids) -> _CanvasContext:
        import torch

        B = decoder_attention_mask.shape[0]
        L = self.model.config.canvas_length
        shape_only = torch.empty((B, L, 1), device=decoder_attention_mask.device)
        build = self.decoder.create_diffusion_decoder_attention_mask
        masks = build(config=self.model.config, inputs_embeds=shape_only, **cache_arg(build, self.cache),
                      decoder_attention_mask=decoder_attention_mask)
        hidden_like = torch.empty((B, L, self.text_config.hidden_size), dtype=self.emb_dtype,
                                  device=decoder_attention_mask.device)
        rope = {t: self.decoder.rotary_emb(hidden_like, position_ids, t) for t in set(self.layer_types)}
        return _CanvasContext(masks, rope, position_ids, _on_heads_axis(rope))

    def denoise(self, canvas, sc_logits, sc_probs, context: _CanvasContext):
        import torch

        embed = self.decoder.embed_tokens
        inputs = embed(canvas)                                                     # (B, L, D)
        if sc_logits is None:
            soft = torch.zeros_like(inputs)
        else:
            probs = sc_probs if self.reuse_probs else \
                sc_logits.to(self.emb_dtype).softmax(dim=-1, dtype=torch.float32)  # (B, L, V)
            soft = torch.matmul(probs.to(self.emb_dtype), embed.weight) * embed.embed_scale.to(inputs.dtype)
        return self._stack_fn(self, self.decoder.self_conditioning(inputs, soft), context)

    def _stack(self, hidden, context: _CanvasContext):
        import torch

        if self.lean is not None:
            hidden = self.lean(hidden, context.rope_heads, context.masks, self.layer_types, context.positions,
                               self.cache)
        else:
            for i, layer in enumerate(self.decoder.layers[:self.n_layers]):
                kind = self.layer_types[i]
                hidden = layer(hidden, position_embeddings=context.rope[kind], attention_mask=context.masks[kind],
                               position_ids=context.positions, **{self.layer_cache_kwarg: self.cache})
        hidden = self.decoder.norm(hidden)
        logits = self.model.lm_head(hidden).to(torch.float32)                     # (B, L, V)
        # Final-logit soft-capping, the reference's three ops in its order (same rounding), in place: the
        # same kernels without two (B, L, V) allocations per step. `.to(float32)` above is a fresh tensor
        # unless the model is float32 already, where lm_head's output is ours to overwrite anyway.
        if torch.is_grad_enabled():
            # Training (dgbench/training/gemma_pair.py) backpropagates through this: tanh's backward needs
            # its output, which the in-place mul_ would overwrite. Same three ops, same rounding.
            return torch.tanh(logits / self.softcap) * self.softcap
        logits.div_(self.softcap)
        logits.tanh_()
        return logits.mul_(self.softcap)


DGBENCH_DIFFUSION_KNOBS = {
    **DIFFUSIONGEMMA_KNOBS,
    "compile": Field(bool, default=False,
                     help="torch.compile the denoising forward (first call compiles: tens of seconds on CPU)"),
    "record_trajectory": Field(bool, default=False,
                               help="keep every step's accepted positions and entropies (first sequence) for reports"),
}


def entropy_bound_spec(model, spec, knobs: dict, fixed_length: bool):
    from dgbench.decoding.entropy_bound import EntropyBoundSpec

    tokens = spec.special_tokens
    return EntropyBoundSpec(
        vocab_size=model.config.text_config.vocab_size,
        canvas_length=knobs["canvas_length"] or model.config.canvas_length,
        max_denoising_steps=knobs["max_denoising_steps"], entropy_bound=knobs["entropy_bound"],
        t_min=knobs["t_min"], t_max=knobs["t_max"], adaptive_stopping=knobs["adaptive_stopping"],
        stability_threshold=knobs["stability_threshold"], confidence_threshold=knobs["confidence_threshold"],
        eos_token_id=None if fixed_length else tokens["eos"], pad_token_id=None if fixed_length else tokens["pad"])


@register_engine("dgbench-diffusion", "diffusion",
                 "dgbench's canvas loop (entropy-bound renoising) over DiffusionGemma's modules; "
                 "token-identical to transformers' generate", DGBENCH_DIFFUSION_KNOBS)
class DgbenchDiffusionDecoder(InPlaceFillMixin, CanvasCostMixin, Decoder):
    stochastic = staticmethod(lambda knobs: max(knobs.get("t_max", 0.0), knobs.get("t_min", 0.0)) > 0)  # as hf-diffusion

    def generate(self, prompt_ids, attention_mask, gen_length, fixed_length, seed, clock,
                 fixed=None, on_output=None) -> GenerationRecord:
        import torch

        from dgbench.backends.hf_diffusion import canvas_length_override
        from dgbench.decoding.diffusion import generate

        sampler = entropy_bound_spec(self.model, self.spec, self.knobs, fixed_length)
        trajectory = [] if self.knobs["record_trajectory"] else None

        def on_step(ev):
            trajectory.append({"canvas": ev.canvas, "step": ev.step,
                               "accepted": ev.accepted[0].nonzero().flatten().tolist(),
                               "entropy": [round(x, 4) for x in ev.entropy[0].tolist()],
                               "argmax": ev.argmax[0].tolist()})

        torch.manual_seed(seed)
        with canvas_length_override(self.model, sampler.canvas_length):
            denoiser = DiffusionGemmaDenoiser(self.model, compile=self.knobs["compile"])
            clock.start()
            out = generate(denoiser, sampler, prompt_ids, attention_mask, gen_length, clock=clock,
                           on_step=on_step if trajectory is not None else None,
                           fixed_tokens=fixed[0] if fixed else None, fixed_mask=fixed[1] if fixed else None,
                           on_canvas=stream_rows(on_output))
            clock.stop()
        prompt_len = prompt_ids.shape[1]
        new = out.sequences[:, prompt_len:prompt_len + gen_length].tolist()
        stop_ids = set() if fixed_length else {sampler.eos_token_id, sampler.pad_token_id}
        canvas_times = clock.times("canvas")
        steps_per_canvas, durations = steps_between(clock.times("step"), canvas_times)
        return GenerationRecord(
            tokens=new, useful_tokens=[useful_length(s, stop_ids) for s in new], e2e_s=clock.elapsed, nfe=out.nfe,
            nfe_per_sequence=out.passes_per_sequence.tolist(),
            first_output_s=canvas_times[0] if canvas_times else None, canvas_times_s=canvas_times,
            step_times_s=durations, steps_per_canvas=steps_per_canvas, step_cap=sampler.max_denoising_steps,
            canvas_length=sampler.canvas_length, extra={"trajectory": trajectory} if trajectory is not None else {})
