"""Reference diffusion decoder: transformers' own `DiffusionGemmaForBlockDiffusion.generate`.

dgbench's engine (issue #3) replaces it as the default; this one stays as the named reference so
reports can show both. We observe its loop without changing it: a streamer marks each committed
canvas, a forward pre-hook on the denoiser marks each denoising step.
"""

from __future__ import annotations

from contextlib import contextmanager

from dgbench.backends.base import (CanvasCostMixin, Decoder, GenerationRecord, MarkingStreamer, register_engine,
                                   steps_between, useful_length)
from dgbench.validation import Field

DIFFUSIONGEMMA_KNOBS = {
    # Defaults of transformers 5.23's DiffusionGemmaGenerationConfig, except the step cap: 48 steps per
    # canvas of a random-weight model never stop early, so the embedded suites set their own.
    "max_denoising_steps": Field(int, default=48, min=1, help="cap on denoising steps per canvas"),
    "entropy_bound": Field(float, default=0.1, min=1e-9, help="entropy-bound acceptance budget per step"),
    "t_max": Field(float, default=0.8, min=0.0, help="temperature at the first step"),
    "t_min": Field(float, default=0.4, min=0.0, help="temperature at the last step"),
    "adaptive_stopping": Field(bool, default=True, help="stop a canvas when stable and confident"),
    "stability_threshold": Field(int, default=1, min=0, help="steps the argmax canvas must stay unchanged"),
    "confidence_threshold": Field(float, default=0.005, min=1e-12, help="mean entropy below which a canvas is confident"),
    "canvas_length": Field(int, default=None, allow_none=True, min=1, help="tokens per canvas (model default if unset)"),
}


@contextmanager
def _step_marks(module, clock):
    handle = module.register_forward_pre_hook(lambda *_: clock.mark("step"))
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def canvas_length_override(model, length: int | None):
    old = model.config.canvas_length
    if length is not None:
        model.config.canvas_length = length
    try:
        yield model.config.canvas_length
    finally:
        model.config.canvas_length = old


@register_engine("hf-diffusion", "diffusion",
                 "transformers' DiffusionGemmaForBlockDiffusion.generate (reference implementation)",
                 DIFFUSIONGEMMA_KNOBS)
class HFDiffusionDecoder(CanvasCostMixin, Decoder):
    def generate(self, prompt_ids, attention_mask, gen_length, fixed_length, seed, clock) -> GenerationRecord:
        import torch

        k = self.knobs
        tokens = self.spec.special_tokens
        kwargs = dict(
            max_new_tokens=gen_length, max_denoising_steps=k["max_denoising_steps"], t_min=k["t_min"],
            t_max=k["t_max"], attention_mask=attention_mask,
            # Fixed-length mode: no EOS handling at all, every generated position counts.
            eos_token_id=None if fixed_length else tokens["eos"],
            pad_token_id=None if fixed_length else tokens["pad"],
        )
        from transformers.models.diffusion_gemma.generation_diffusion_gemma import EntropyBoundSamplerConfig

        kwargs["sampler_config"] = EntropyBoundSamplerConfig(entropy_bound=k["entropy_bound"])
        if k["adaptive_stopping"]:
            kwargs.update(stability_threshold=k["stability_threshold"], confidence_threshold=k["confidence_threshold"])
        else:
            kwargs.update(stability_threshold=None, confidence_threshold=None)

        streamer = MarkingStreamer(clock, "canvas")
        torch.manual_seed(seed)
        with canvas_length_override(self.model, k["canvas_length"]) as canvas, \
                _step_marks(self.model.model.decoder, clock), torch.inference_mode():
            clock.start()
            out = self.model.generate(prompt_ids, streamer=streamer, **kwargs)
            clock.stop()

        prompt_len = prompt_ids.shape[1]
        new = out.sequences[:, prompt_len:prompt_len + gen_length].tolist()
        stop_ids = set() if fixed_length else {tokens["eos"], tokens["pad"]}
        useful = [useful_length(seq, stop_ids) for seq in new]
        canvas_times = clock.times("canvas")
        step_starts = clock.times("step")
        steps_per_canvas, step_durations = steps_between(step_starts, canvas_times)
        # transformers returns valid tokens / passes per sequence; recover each sequence's passes from it.
        tpf = out.tokens_per_forward.tolist()
        all_new = out.sequences[:, prompt_len:]
        valid = (all_new != tokens["pad"]).sum(-1).tolist() if not fixed_length else [all_new.shape[1]] * len(new)
        nfe = len(step_starts)
        per_seq = [round(v / t) if t else nfe for v, t in zip(valid, tpf)]
        return GenerationRecord(
            tokens=new, useful_tokens=useful, e2e_s=clock.elapsed, nfe=nfe, nfe_per_sequence=per_seq,
            first_output_s=canvas_times[0] if canvas_times else None, canvas_times_s=canvas_times,
            step_times_s=step_durations, steps_per_canvas=steps_per_canvas, step_cap=k["max_denoising_steps"],
            canvas_length=canvas,
        )
