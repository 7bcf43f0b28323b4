"""Masked-diffusion models for dgbench: transformers models as LLaDA-style denoisers, an offline loader,
and the `dgbench-masked` engine over dgbench/decoding/masked.py.

Two kinds of model can denoise:
  * a masked LM (`...ForMaskedLM`: BERT, ModernBERT) or a remote-code diffusion LM (LLaDA, Dream): already
    bidirectional, called with a 2D padding mask; no KV cache, so `cache` must be "none";
  * a decoder architecture (e.g. `LlamaForCausalLM`) run bidirectionally: we pass a 4D additive mask that
    lets every position see every unpadded position. transformers 5.23's masking_utils returns a 4D
    mask as-is (`_preprocess_mask_arguments`: "If the mask is already 4D, simply return as-is"), and
    sdpa only sets is_causal when the mask is None, so no causal mask is added; the mask replaces the
    model's own (sliding windows included). These models take `past_key_values`, so Fast-dLLM's prefix
    and dual caches work.

Like the other engine modules, nothing here imports torch or transformers at import time.
"""

from __future__ import annotations

import functools

from dgbench.backends.base import (Decoder, GenerationRecord, InPlaceFillMixin, register_engine, steps_between,
                                   stream_rows, useful_length)
from dgbench.compat import cache_arg
from dgbench.errors import ConfigError
from dgbench.validation import Field

# Kept literal (not imported from dgbench.decoding.masked) so registering the engine imports no torch;
# tests check they equal masked.REMASKING / masked.CACHE_MODES.
REMASKING_CHOICES = ["low_confidence", "random", "topk_margin", "entropy"]
CACHE_CHOICES = ["none", "prefix", "dual"]


def _is_bidirectional_encoder(model) -> bool:
    return type(model).__name__.endswith("ForMaskedLM") or bool(getattr(model.config, "auto_map", None))


class EncoderDenoiser:
    """MaskedDenoiser over a model that is bidirectional by itself (masked LM, LLaDA/Dream remote code)."""

    def __init__(self, model):
        self.model = model
        self.name = type(model).__name__
        # Dream is initialised from an AR model and keeps its shift: the logits at i predict token i + 1,
        # so its own sampler shifts them right by one (Dream generation_utils.py); LLaDA and BERT do not.
        self.shift = getattr(model.config, "model_type", "") == "Dream"

    def logits(self, x, attention_mask):
        import torch

        logits = self.model(input_ids=x, attention_mask=attention_mask.long()).logits.float()  # (B, T, V)
        if self.shift:
            logits = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)
        return logits

    def _no_cache(self, *_args):
        raise ConfigError(f"{self.name} has no KV cache (a bidirectional encoder without past_key_values): "
                          "cache modes 'prefix'/'dual' need a decoder architecture run bidirectionally; "
                          "use cache: none")

    prefill = window = _no_cache


@functools.cache
def _block_cache_class():
    from transformers.cache_utils import Cache

    class BlockCache(Cache):
        """Fast-dLLM's KV reuse on transformers' Cache interface. While recording (a full pass) it keeps each
        layer's keys and values; with a span [start, end) set, a layer's update returns the kept K/V with
        that span replaced by the fresh ones, in sequence order. The kept K/V is never overwritten: the
        span is recomputed every step anyway (Fast-dLLM writes it back in place; same attention)."""

        def __init__(self):
            super().__init__(layers=[])
            self.kv: dict[int, tuple] = {}
            self.span: tuple[int, int] | None = None

        def update(self, key_states, value_states, layer_idx, *args, **kwargs):
            import torch

            if self.span is None:
                self.kv[layer_idx] = (key_states, value_states)
                return key_states, value_states
            start, end = self.span
            k, v = self.kv[layer_idx]                                    # (B, H, T, D)
            return (torch.cat([k[:, :, :start], key_states, k[:, :, end:]], dim=2),
                    torch.cat([v[:, :, :start], value_states, v[:, :, end:]], dim=2))

        def get_seq_length(self, layer_idx: int = 0) -> int:
            if layer_idx not in self.kv:
                return 0
            total = self.kv[layer_idx][0].shape[2]
            return total if self.span is None else total - (self.span[1] - self.span[0])

    return BlockCache


class BidirectionalDecoderDenoiser:
    """MaskedDenoiser over a decoder LM (LlamaForCausalLM, ...) made bidirectional by a full 4D mask."""

    def __init__(self, model):
        self.model = model
        self.cache = None

    def _mask(self, attention_mask, query_length: int):
        """Additive (B, 1, q, T) mask: 0 where the key is a real token, dtype-min where it is padding.
        Additive, not bool, because eager attention adds the mask to the scores."""
        import torch

        dtype = self.model.dtype
        blocked = ~attention_mask.bool()[:, None, None, :]                       # (B, 1, 1, T)
        mask = torch.zeros(blocked.shape, dtype=dtype, device=attention_mask.device)
        mask = mask.masked_fill(blocked, torch.finfo(dtype).min)
        return mask.expand(-1, -1, query_length, -1)

    def _forward(self, x, attention_mask, start: int, cache):
        import torch

        positions = torch.arange(start, start + x.shape[1], device=x.device)[None]  # (1, q)
        out = self.model(input_ids=x, attention_mask=self._mask(attention_mask, x.shape[1]),
                         position_ids=positions, **cache_arg(self.model, cache), use_cache=cache is not None)
        return out.logits.float()                                                     # (B, q, V)

    def logits(self, x, attention_mask):
        return self._forward(x, attention_mask, 0, None)

    def prefill(self, x, attention_mask):
        self.cache = _block_cache_class()()
        return self._forward(x, attention_mask, 0, self.cache)

    def window(self, x_window, attention_mask, start, end):
        self.cache.span = (start, end)
        try:
            return self._forward(x_window, attention_mask, start, self.cache)
        finally:
            self.cache.span = None


def make_denoiser(model, cache: str = "none"):
    """The MaskedDenoiser for a loaded model; a cache mode it cannot serve is a ConfigError naming its class."""
    if _is_bidirectional_encoder(model):
        if cache != "none":
            raise ConfigError(f"cache={cache!r} needs KV caching, but {type(model).__name__} is a bidirectional "
                              "encoder without past_key_values; use cache: none (or a decoder architecture)")
        return EncoderDenoiser(model)
    return BidirectionalDecoderDenoiser(model)


def load_masked_model(path, trust_remote_code: bool = False, dtype: str = "float32", device: str = "cpu"):
    """A masked-diffusion model from a local directory or the local HF cache (offline), through the shared
    loader (dgbench.models.loading): `...ForMaskedLM` architectures load as masked LMs, remote code
    (auto_map: LLaDA, Dream) through its own classes and only with trust_remote_code, and a decoder
    architecture as itself, to be run bidirectionally."""
    from dgbench.models.loading import load_pretrained

    return load_pretrained(path, trust_remote_code=trust_remote_code, dtype=dtype, device=device)


MASKED_KNOBS = {
    "steps": Field(int, default=None, allow_none=True, min=1,
                   help="denoising steps for the whole answer, split evenly over blocks (default gen_length)"),
    "block_length": Field(int, default=None, allow_none=True, min=1,
                          help="tokens per semi-autoregressive block (default gen_length: one block)"),
    "temperature": Field(float, default=0.0, min=0.0, help="Gumbel-max sampling temperature; 0 is greedy"),
    "remasking": Field(str, default="low_confidence", choices=REMASKING_CHOICES,
                       help="confidence that orders unmasking (LLaDA: low_confidence, random; Dream: "
                            "topk_margin, entropy)"),
    "threshold": Field(float, default=None, allow_none=True, min=0.0,
                       help="Fast-dLLM parallel decoding: unmask every prediction above this confidence "
                            "(at least one per step); unset: LLaDA's fixed schedule"),
    "cache": Field(str, default="none", choices=CACHE_CHOICES,
                   help="Fast-dLLM approximate KV cache: none, prefix, or dual"),
    "record_trajectory": Field(bool, default=False,
                               help="keep every step's unmasked positions and confidences (first sequence)"),
}


def masked_spec(spec, knobs: dict, gen_length: int, fixed_length: bool, to_fill: int | None = None):
    """`to_fill`: positions that start masked when fewer than gen_length (in-place infilling). With one
    block and no `steps` knob, the default stays LLaDA's one token per step: steps = masked positions."""
    from dgbench.decoding.masked import MaskedDiffusionSpec

    tokens = spec.special_tokens
    if "mask" not in tokens:
        raise ConfigError(f"model {spec.name!r} has no 'mask' special token; dgbench-masked needs one")
    try:
        return MaskedDiffusionSpec(
            mask_token_id=tokens["mask"], gen_length=gen_length,
            block_length=knobs["block_length"] or gen_length,
            steps=knobs["steps"] or (to_fill if to_fill and not knobs["block_length"] else gen_length),
            temperature=knobs["temperature"], remasking=knobs["remasking"], threshold=knobs["threshold"],
            cache=knobs["cache"], eos_token_id=None if fixed_length else tokens.get("eos"),
            pad_token_id=None if fixed_length else tokens.get("pad"))
    except ValueError as exc:
        raise ConfigError(f"dgbench-masked with model {spec.name!r}: {exc}") from None


@register_engine("dgbench-masked", "diffusion",
                 "masked diffusion (LLaDA remasking, Dream scores, Fast-dLLM threshold and KV caches) over a "
                 "masked LM or a decoder run bidirectionally", MASKED_KNOBS)
class MaskedDiffusionDecoder(InPlaceFillMixin, Decoder):
    @classmethod
    def cost_estimate(cls, spec, knobs: dict, batch: int, prompt_length: int, gen_length: int) -> dict:
        if spec.paradigm != "diffusion":   # a decoder-only model run causally: one pass per token
            return super().cost_estimate(spec, knobs, batch, prompt_length, gen_length)
        # Masked diffusion: `steps` passes over the whole sequence (LLaDA's default: one per answer token;
        # Fast-dLLM's threshold can only cut it), no KV cache in the default mode.
        passes = knobs.get("steps") or gen_length
        return {"passes": passes, "positions": batch * passes * (prompt_length + gen_length)}

    def generate(self, prompt_ids, attention_mask, gen_length, fixed_length, seed, clock,
                 fixed=None, on_output=None) -> GenerationRecord:
        import torch

        from dgbench.decoding.masked import generate

        to_fill = int((~fixed[1]).sum(dim=1).max()) if fixed else None
        sampler = masked_spec(self.spec, self.knobs, gen_length, fixed_length, to_fill)
        denoiser = make_denoiser(self.model, sampler.cache)
        trajectory = [] if self.knobs["record_trajectory"] else None

        def on_step(ev):
            trajectory.append({"block": ev.block, "step": ev.step,
                               "unmasked": ev.unmasked[0].nonzero().flatten().tolist(),
                               "confidence": [round(c, 4) for c in ev.confidence[0][ev.unmasked[0]].tolist()]})

        torch.manual_seed(seed)
        clock.start()
        out = generate(denoiser, sampler, prompt_ids, attention_mask, clock=clock,
                       on_step=on_step if trajectory is not None else None,
                       fixed_tokens=fixed[0] if fixed else None, fixed_mask=fixed[1] if fixed else None,
                       on_canvas=stream_rows(on_output))
        clock.stop()
        prompt_len = prompt_ids.shape[1]
        new = out.sequences[:, prompt_len:].tolist()
        stop_ids = set() if fixed_length else {sampler.eos_token_id, sampler.pad_token_id} - {None}
        canvas_times = clock.times("canvas")
        _, durations = steps_between(clock.times("step"), canvas_times)
        extra = {"block_length": sampler.block_length, "cache": sampler.cache}
        if trajectory is not None:
            extra["trajectory"] = trajectory
        return GenerationRecord(
            tokens=new, useful_tokens=[useful_length(s, stop_ids) for s in new], e2e_s=clock.elapsed,
            nfe=out.nfe, nfe_per_sequence=out.passes_per_sequence.tolist(),
            first_output_s=canvas_times[0] if canvas_times else None, canvas_times_s=canvas_times,
            step_times_s=durations, steps_per_canvas=out.steps_per_block,
            step_cap=sampler.block_length if sampler.threshold is not None else sampler.steps_per_block,
            canvas_length=sampler.block_length, extra=extra)
