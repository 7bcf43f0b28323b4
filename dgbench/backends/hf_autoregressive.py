"""Autoregressive baseline over a transformers causal LM's `generate`, with every decode step timed.

The streamer is called once with the prompt and then once per generated token (the whole batch), so
TTFT and each inter-token gap come from real per-step timestamps, not total / N.
"""

from __future__ import annotations

from contextlib import contextmanager

from dgbench.backends.base import Decoder, GenerationRecord, MarkingStreamer, register_engine, useful_length
from dgbench.validation import Field

AR_KNOBS = {
    "do_sample": Field(bool, default=False, help="sample instead of greedy decoding"),
    "temperature": Field(float, default=1.0, min=1e-6, help="sampling temperature (with do_sample)"),
    "cache_implementation": Field(str, default="dynamic", choices=["dynamic", "static"],
                                  help="KV cache kind: dynamic grows, static is preallocated"),
}


@contextmanager
def _count_forwards(module):
    counter = {"n": 0}

    def hook(*_):
        counter["n"] += 1

    handle = module.register_forward_pre_hook(hook)
    try:
        yield counter
    finally:
        handle.remove()


@register_engine("hf-autoregressive", "autoregressive",
                 "transformers GenerationMixin.generate with a KV cache (greedy or sampling)", AR_KNOBS)
class HFAutoregressiveDecoder(Decoder):
    def generate(self, prompt_ids, attention_mask, gen_length, fixed_length, seed, clock) -> GenerationRecord:
        import torch

        k = self.knobs
        tokens = self.spec.special_tokens
        kwargs = dict(max_new_tokens=gen_length, do_sample=k["do_sample"], attention_mask=attention_mask,
                      cache_implementation=k["cache_implementation"], pad_token_id=tokens["pad"],
                      eos_token_id=tokens["eos"])
        if k["do_sample"]:
            kwargs.update(temperature=k["temperature"], top_k=None, top_p=None)
        if fixed_length:
            kwargs["min_new_tokens"] = gen_length  # suppresses EOS so every sequence runs to length
        streamer = MarkingStreamer(clock, "token")
        torch.manual_seed(seed)
        with _count_forwards(self.model) as forwards, torch.inference_mode():
            clock.start()
            out = self.model.generate(prompt_ids, streamer=streamer, **kwargs)
            clock.stop()

        new = out[:, prompt_ids.shape[1]:].tolist()
        stop_ids = set() if fixed_length else {tokens["eos"], tokens["pad"]}
        useful = [useful_length(seq, stop_ids) for seq in new]
        # One forward pass per generated token (the prefill yields the first); a finished sequence stops
        # taking part after its EOS.
        per_seq = [min(forwards["n"], u + (0 if u == len(s) else 1)) or 1 for u, s in zip(useful, new)]
        token_times = clock.times("token")
        return GenerationRecord(
            tokens=new, useful_tokens=useful, e2e_s=clock.elapsed, nfe=forwards["n"], nfe_per_sequence=per_seq,
            first_output_s=token_times[0] if token_times else None, token_times_s=token_times,
        )
