"""dgbench's own autoregressive loop (decoding/autoregressive.py) over a transformers causal LM.

Token-identical to `hf-autoregressive` for the same knobs and seed (greedy, and sampled: the same random
draws in the same order), so the two rows differ only in loop overhead, cache handling and compilation.
TTFT is the time to the first token (sampled from the prefill logits); each later token is marked when
its decode step finishes.

Both AR engines can also fill a hole between a prefix and a suffix (`infill`), with the layout chosen by
decoding/infill.py and recorded in `GenerationRecord.extra["infill_mode"]`.
"""

from __future__ import annotations

import math

from dgbench.backends.base import Decoder, GenerationRecord, register_engine, stream_rows, useful_length
from dgbench.validation import Field

# Shared by both AR engines, so the same suite knobs sample the same way in each.
SAMPLING_KNOBS = {
    "do_sample": Field(bool, default=False, help="sample instead of greedy decoding"),
    "temperature": Field(float, default=1.0, min=1e-6, help="sampling temperature (with do_sample)"),
    "top_k": Field(int, default=None, allow_none=True, min=1,
                   help="sample only among the k most likely tokens (with do_sample); unset: the whole vocabulary"),
}

DGBENCH_AR_KNOBS = {
    **SAMPLING_KNOBS,
    "cache": Field(str, default="dynamic", choices=["dynamic", "static"],
                   help="KV cache kind: dynamic grows, static is preallocated (fixed shapes for compile)"),
    "compile": Field(bool, default=False,
                     help="torch.compile decode_one_token (first call compiles: tens of seconds on CPU)"),
    # No default on purpose: an unset knob is absent from the point's knobs, so point ids and config
    # hashes of every existing run stay what they were.
    "extra_forward_passes": Field(float, min=0,
                                  help="TESTING KNOB: after every forward (prefill and each decode step) run the "
                                       "model N more times on the same tokens without the KV cache, output "
                                       "discarded and not counted in NFE: a deliberately slowed decoder with "
                                       "unchanged tokens, for checking that `dgbench gate` catches slowdowns. "
                                       "A fraction plants a smaller slowdown: 0.1 runs one extra pass per ten "
                                       "forwards (3 extra passes on a 32-token generation)"),
}


class _SlowedModel:
    """The model with N extra, discarded forward passes after each real one (knob extra_forward_passes).

    The extra passes are real work of the same kind (the same tokens through the same network), so the
    slowdown scales with the model and device as a genuine regression would; they run without the KV
    cache so the cache, the tokens chosen and NFE (counted by the decode loop) are all unchanged.
    Everything else (config, dtype, device, transformers' decode switches) is the wrapped model's.
    """

    def __init__(self, model, extra_passes: float):
        self._model = model
        self._extra_passes = extra_passes
        # A fractional N: the credit grows by N per forward and a pass runs per whole unit of it. It starts
        # at one half, so 0.1 x 32 forwards rounds to 3 passes, at forwards 5, 15 and 25, the same every call.
        self._forwards = 0
        self._done = 0

    def __getattr__(self, name):
        return getattr(self._model, name)

    def __call__(self, *, input_ids, position_ids=None, **kwargs):
        out = self._model(input_ids=input_ids, position_ids=position_ids, **kwargs)
        self._forwards += 1
        due = math.floor(0.5 + self._extra_passes * self._forwards + 1e-9)   # 1e-9: 0.1 x 5 is not exactly 0.5
        while self._done < due:
            self._done += 1
            self._model(input_ids=input_ids, position_ids=position_ids, use_cache=False)
        return out


class ARInfillMixin:
    """`infill` for AR decoders: FIM prompt per (prefix, suffix), left-padded batch, mode in the record."""

    def infill(self, prefixes: list[list[int]], suffixes: list[list[int]], gen_length: int, fixed_length: bool,
               seed: int, clock, use_suffix: bool = True, separator: tuple[int, ...] = ()) -> GenerationRecord:
        from dgbench.decoding.autoregressive import left_pad
        from dgbench.decoding.infill import build_infill_prompt, fim_tokens_from_special

        tokens = self.spec.special_tokens
        fim = fim_tokens_from_special(tokens)
        prompts = [build_infill_prompt(p, s, fim, bos_token_id=tokens.get("bos"), separator=separator,
                                       use_suffix=use_suffix) for p, s in zip(prefixes, suffixes, strict=True)]
        modes = {p.mode for p in prompts}
        ids, mask = left_pad([p.ids for p in prompts], tokens["pad"], device=str(self.model.device))
        rec = self.generate(ids, mask, gen_length, fixed_length, seed, clock)
        # One mode per batch in practice (it depends on the model and on whether suffixes are empty);
        # a mixed batch says so rather than hiding it.
        rec.extra["infill_mode"] = modes.pop() if len(modes) == 1 else "mixed:" + ",".join(sorted(modes))
        rec.extra["infill_modes"] = [p.mode for p in prompts]
        return rec


def ar_sampling_spec(spec, knobs: dict, gen_length: int, fixed_length: bool):
    from dgbench.decoding.autoregressive import ARSamplingSpec

    tokens = spec.special_tokens
    # A fixed-length run keeps EOS defined but unpickable until the end, as `hf-autoregressive` does with
    # min_new_tokens: the two engines then choose the same tokens.
    return ARSamplingSpec(eos_token_id=tokens["eos"], pad_token_id=tokens["pad"], do_sample=knobs["do_sample"],
                          temperature=knobs["temperature"] if knobs["do_sample"] else 1.0,
                          top_k=knobs["top_k"] if knobs["do_sample"] else None,
                          min_new_tokens=gen_length if fixed_length else 0)


@register_engine("dgbench-autoregressive", "autoregressive",
                 "dgbench's prefill / decode_one_token loop (gpt-fast style) with a dynamic or static KV cache "
                 "and optional torch.compile; token-identical to transformers' generate", DGBENCH_AR_KNOBS)
class DgbenchAutoregressiveDecoder(ARInfillMixin, Decoder):
    def generate(self, prompt_ids, attention_mask, gen_length, fixed_length, seed, clock,
                 on_output=None) -> GenerationRecord:
        import torch

        from dgbench.decoding.autoregressive import generate

        sampler = ar_sampling_spec(self.spec, self.knobs, gen_length, fixed_length)
        torch.manual_seed(seed)
        with torch.inference_mode():
            clock.start()
            extra = self.knobs.get("extra_forward_passes") or 0
            model = _SlowedModel(self.model, extra) if extra else self.model
            out = generate(model, sampler, prompt_ids, attention_mask, gen_length,
                           cache_kind=self.knobs["cache"], clock=clock, compile=self.knobs["compile"],
                           on_token=stream_rows(on_output, per_token=True))
            clock.stop()
        new = out.sequences[:, prompt_ids.shape[1]:].tolist()
        stop_ids = set() if fixed_length else {sampler.eos_token_id, sampler.pad_token_id}
        # token_times_s holds one time per generated token, the first being the prefill's (TTFT), as the
        # harness computes TPOT = (e2e - TTFT) / (tokens - 1) from it.
        token_times = clock.times("prefill") + clock.times("token")
        return GenerationRecord(
            tokens=new, useful_tokens=[useful_length(s, stop_ids) for s in new], e2e_s=clock.elapsed, nfe=out.nfe,
            nfe_per_sequence=out.passes_per_sequence.tolist(), first_output_s=token_times[0],
            token_times_s=token_times, extra={"cache": self.knobs["cache"], "compile": self.knobs["compile"]})
