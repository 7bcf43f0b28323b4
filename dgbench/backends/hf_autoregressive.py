"""Autoregressive baseline over a transformers causal LM's `generate`, with every token timed, and
transformers' speculative decoding (a draft model, or prompt lookup) with its acceptance counted.

The streamer is called once with the prompt and then once per decode step: one token per row normally,
or the tokens one verification step committed (accepted drafts plus the target's own token) in assisted
generation. Each committed token gets a timestamp, so TTFT and inter-token gaps come from real step
times, not total / N; with speculation, tokens of one step share a timestamp (they arrive together).
"""

from __future__ import annotations

from contextlib import contextmanager

from dgbench.backends.autoregressive import SAMPLING_KNOBS, ARInfillMixin
from dgbench.backends.base import Decoder, GenerationRecord, MarkingStreamer, register_engine, useful_length
from dgbench.errors import ConfigError
from dgbench.validation import Field


def _model_names() -> list[str]:
    from dgbench.models.registry import names

    return names()


AR_KNOBS = {
    **SAMPLING_KNOBS,
    "cache_implementation": Field(str, default="dynamic", choices=["dynamic", "static"],
                                  help="KV cache kind: dynamic grows, static is preallocated"),
    "assistant_model": Field(str, default=None, allow_none=True, choices=_model_names,
                             help="speculative decoding: a registered model spec drafting for the target (same "
                                  "vocabulary; batch 1, dynamic cache)"),
    "prompt_lookup_num_tokens": Field(int, default=None, allow_none=True, min=1,
                                      help="prompt lookup decoding: draft this many tokens copied from an n-gram "
                                           "match in the context (batch 1, dynamic cache)"),
    "num_assistant_tokens": Field(int, default=None, allow_none=True, min=1,
                                  help="draft tokens per round with assistant_model (unset: transformers' 20)"),
    "assistant_confidence_threshold": Field(float, default=None, allow_none=True, min=0.0,
                                            help="the draft model stops a round early below this probability "
                                                 "(unset: transformers' 0.4; 0: never)"),
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


class TokenMarkingStreamer(MarkingStreamer):
    """One `token` mark per committed token: a plain step puts (B,) ids, one token per row; a speculative
    step puts (1, k), k tokens at once. `on_output` (dgbench serve) gets each step's new ids per row."""

    def __init__(self, clock, label: str, on_output=None):
        super().__init__(clock, label)
        self.on_output = on_output

    def put(self, value) -> None:
        self.calls += 1
        if self.calls > 1:
            for _ in range(value.shape[-1] if value.dim() == 2 else 1):
                self.clock.mark(self.label)
            if self.on_output is not None:
                self.on_output(value.tolist() if value.dim() == 2 else [[t] for t in value.tolist()])


class DraftCounter:
    """Stands in for the candidate generator transformers builds for assisted decoding and counts drafts.

    transformers' loop (GenerationMixin._assisted_decoding) calls `get_candidates(input_ids)` once per
    verification step, which returns the prompt-so-far plus the draft, and then, after the target's forward
    has verified it, `update_candidate_strategy(input_ids, ...)` with the sequence extended by the committed
    tokens. The accepted drafts are the longest common prefix of draft and committed tokens: the token
    after it is the target's own (greedy: its argmax, which differs from the rejected draft; speculative
    sampling: a draw from max(0, p - q), which has no mass on the rejected draft), so the prefix is exactly
    transformers' `n_matches`, and still right when it later cuts the step at EOS or at the length limit.
    Counting from the two calls' arguments works for every candidate generator (draft model, prompt
    lookup, Gemma 4 drafter) without reading their private state. Everything else is passed through.
    """

    def __init__(self, inner):
        self.inner = inner
        self.proposed = 0
        self.accepted = 0
        self.draft_rounds = 0      # verification steps that had a draft to verify
        self.verify_steps = 0      # target forwards in the loop, drafts or not
        self._pending: tuple[int, list[int]] | None = None

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def get_candidates(self, input_ids, *args, **kwargs):
        candidates, logits = self.inner.get_candidates(input_ids, *args, **kwargs)
        start = input_ids.shape[1]
        self._pending = (start, candidates[0, start:].tolist())
        return candidates, logits

    def update_candidate_strategy(self, input_ids, scores, num_matches):
        start, draft = self._pending
        committed = input_ids[0, start:].tolist()
        accepted = 0
        for proposed_id, committed_id in zip(draft, committed):
            if proposed_id != committed_id:
                break
            accepted += 1
        self.verify_steps += 1
        self.proposed += len(draft)
        self.accepted += accepted
        self.draft_rounds += bool(draft)
        return self.inner.update_candidate_strategy(input_ids, scores, num_matches)

    def summary(self) -> dict:
        return {"draft_proposed": self.proposed, "draft_accepted": self.accepted,
                "acceptance_rate": self.accepted / self.proposed if self.proposed else None,
                # mean accepted length + 1 = tokens per target forward, when every step had a draft
                "mean_accepted_length": self.accepted / self.draft_rounds if self.draft_rounds else None,
                "draft_rounds": self.draft_rounds, "verify_steps": self.verify_steps}


@contextmanager
def counting_drafts(model):
    """Wrap every candidate generator `model.generate` builds inside this block in a DraftCounter."""
    build = getattr(model, "_get_candidate_generator", None)
    if build is None:  # pragma: no cover - guards a transformers refactor
        raise RuntimeError("transformers has no GenerationMixin._get_candidate_generator: the draft counter "
                           "needs updating for this version")
    counters: list[DraftCounter] = []

    def wrapped(*args, **kwargs):
        counters.append(DraftCounter(build(*args, **kwargs)))
        return counters[-1]

    model._get_candidate_generator = wrapped   # an instance attribute shadows the method for this model only
    try:
        yield counters
    finally:
        del model._get_candidate_generator


def _assistant(model, name: str, target_spec):
    """The draft model, built once per target model and kept on it (the harness makes a decoder per point)."""
    from dgbench.models.registry import get
    from dgbench.models.synthetic import build_synthetic

    cache = model.__dict__.setdefault("_dgbench_assistants", {})
    if name not in cache:
        spec = get(name)
        if spec.paradigm != "autoregressive":
            raise ConfigError(f"assistant_model {name!r} is a {spec.paradigm} model; a draft model must be a "
                              f"causal LM")
        if spec.text_config.get("vocab_size") != target_spec.text_config.get("vocab_size"):
            raise ConfigError(f"assistant_model {name!r} has vocabulary {spec.text_config.get('vocab_size')}, the "
                              f"target {target_spec.name!r} {target_spec.text_config.get('vocab_size')}: drafts "
                              f"must share the target's token ids")
        # Same seed as the harness uses for the target: a spec drafting for itself gets identical weights,
        # which is how the tests check the counting (greedy acceptance must then be 100%).
        cache[name] = build_synthetic(spec, device=str(model.device), dtype=str(model.dtype).removeprefix("torch."))
    return cache[name]


@register_engine("hf-autoregressive", "autoregressive",
                 "transformers GenerationMixin.generate with a KV cache (greedy or sampling), optionally "
                 "speculative (draft model or prompt lookup)", AR_KNOBS)
class HFAutoregressiveDecoder(ARInfillMixin, Decoder):
    def __init__(self, model, spec, knobs: dict):
        super().__init__(model, spec, knobs)
        k = self.knobs
        self.speculative = k.get("assistant_model") is not None or k.get("prompt_lookup_num_tokens") is not None
        if k.get("assistant_model") is not None and k.get("prompt_lookup_num_tokens") is not None:
            raise ConfigError("hf-autoregressive: set assistant_model or prompt_lookup_num_tokens, not both "
                              "(transformers would silently use prompt lookup)")
        if self.speculative and k["cache_implementation"] != "dynamic":
            raise ConfigError("hf-autoregressive: speculative decoding needs cache_implementation: dynamic "
                              "(transformers crops the cache after each verification)")
        self.assistant = _assistant(model, k["assistant_model"], spec) if k.get("assistant_model") else None

    def generate(self, prompt_ids, attention_mask, gen_length, fixed_length, seed, clock,
                 on_output=None) -> GenerationRecord:
        import torch

        k = self.knobs
        tokens = self.spec.special_tokens
        kwargs = dict(max_new_tokens=gen_length, do_sample=k["do_sample"], attention_mask=attention_mask,
                      cache_implementation=k["cache_implementation"], pad_token_id=tokens["pad"],
                      eos_token_id=tokens["eos"])
        if k["do_sample"]:
            kwargs.update(temperature=k["temperature"], top_k=k.get("top_k"), top_p=None)
        if fixed_length:
            kwargs["min_new_tokens"] = gen_length  # suppresses EOS so every sequence runs to length
        if self.speculative:
            if prompt_ids.shape[0] != 1:
                raise ConfigError(f"hf-autoregressive: speculative decoding runs batch 1 only (transformers), "
                                  f"got batch {prompt_ids.shape[0]}")
            # Dynamic is the default; naming it would reach the draft model's own generate calls too, which
            # transformers refuses there (they pass the draft's cache object along).
            del kwargs["cache_implementation"]
            if self.assistant is not None:
                kwargs["assistant_model"] = self.assistant
                config = self.assistant.generation_config
                # Set on every call: the assistant is shared by decoders with different knobs. "constant":
                # transformers' "heuristic" schedule carries the draft length over from one call to the next,
                # which would make repetitions depend on each other.
                config.num_assistant_tokens = k.get("num_assistant_tokens") or 20
                config.num_assistant_tokens_schedule = "constant"
                threshold = k.get("assistant_confidence_threshold")
                config.assistant_confidence_threshold = 0.4 if threshold is None else threshold
            else:
                kwargs["prompt_lookup_num_tokens"] = k["prompt_lookup_num_tokens"]
        streamer = TokenMarkingStreamer(clock, "token", on_output)
        torch.manual_seed(seed)
        with _count_forwards(self.model) as forwards, counting_drafts(self.model) as drafts, \
                _count_forwards(self.assistant or torch.nn.Module()) as draft_forwards, torch.inference_mode():
            clock.start()
            out = self.model.generate(prompt_ids, streamer=streamer, **kwargs)
            clock.stop()

        new = out[:, prompt_ids.shape[1]:].tolist()
        stop_ids = set() if fixed_length else {tokens["eos"], tokens["pad"]}
        useful = [useful_length(seq, stop_ids) for seq in new]
        token_times = clock.times("token")
        extra: dict = {}
        if self.speculative:
            # A speculative forward yields several tokens; nfe counts target forwards only (the draft
            # model's passes are in `draft_forwards`), so tokens per forward shows the speed-up.
            per_seq = [forwards["n"]]
            extra.update(drafts[0].summary() if drafts else DraftCounter(None).summary())
            extra["target_forwards"] = forwards["n"]
            if self.assistant is not None:
                extra.update(assistant_model=k["assistant_model"], draft_forwards=draft_forwards["n"])
        else:
            # One forward pass per generated token (the prefill yields the first); a finished sequence stops
            # taking part after its EOS.
            per_seq = [min(forwards["n"], u + (0 if u == len(s) else 1)) or 1 for u, s in zip(useful, new)]
        return GenerationRecord(
            tokens=new, useful_tokens=useful, e2e_s=clock.elapsed, nfe=forwards["n"], nfe_per_sequence=per_seq,
            first_output_s=token_times[0] if token_times else None, token_times_s=token_times, extra=extra,
        )
