"""The reference decoders on real (tiny, random-weight) transformers models: what they record is true."""

import pytest
import torch

from dgbench.backends import ENGINES
from dgbench.scenarios.generation import synthetic_prompts
from dgbench.metrics import per_rep_metrics
from dgbench.models.registry import get
from dgbench.models.synthetic import build_synthetic
from dgbench.telemetry.timing import Clock
from dgbench.validation import Location, validate_mapping


def knobs(engine: str, **over) -> dict:
    return validate_mapping(over, ENGINES[engine].knobs, Location("test"))


@pytest.fixture(scope="module")
def diffusion_model():
    return build_synthetic(get("diffusiongemma-tiny"))


@pytest.fixture(scope="module")
def ar_model():
    return build_synthetic(get("gemma4-tiny"))


def test_synthetic_diffusiongemma_is_text_only(diffusion_model):
    assert diffusion_model.model.encoder.vision_tower is None
    names = [n for n, _ in diffusion_model.named_parameters()]
    assert not any("vision" in n for n in names)


def test_diffusion_record_matches_transformers_own_counts(diffusion_model):
    spec = get("diffusiongemma-tiny")
    k = knobs("hf-diffusion", max_denoising_steps=3, adaptive_stopping=False)
    dec = ENGINES["hf-diffusion"].factory(diffusion_model, spec, k)
    ids, mask = synthetic_prompts(2, 8, 512, 3, seed=0, device="cpu")
    rec = dec.generate(ids, mask, gen_length=40, fixed_length=True, seed=1, clock=Clock())
    assert rec.canvas_length == 16 and len(rec.canvas_times_s) == 3  # ceil(40 / 16) canvases
    assert rec.steps_per_canvas == [3, 3, 3] and rec.nfe == 9
    assert rec.nfe_per_sequence == [9, 9]
    assert [len(t) for t in rec.tokens] == [40, 40], "tokens beyond the requested length are not counted"
    assert rec.canvas_times_s == sorted(rec.canvas_times_s) and rec.canvas_times_s[-1] <= rec.e2e_s
    # Same seed, transformers' generate called directly: identical tokens (we only observe its loop).
    from transformers.models.diffusion_gemma.generation_diffusion_gemma import EntropyBoundSamplerConfig

    torch.manual_seed(1)
    ref = diffusion_model.generate(ids, attention_mask=mask, max_new_tokens=40, max_denoising_steps=3,
                                   stability_threshold=None, confidence_threshold=None, eos_token_id=None,
                                   pad_token_id=None, sampler_config=EntropyBoundSamplerConfig(entropy_bound=0.1))
    assert ref.sequences[:, 8:48].tolist() == rec.tokens
    m = per_rep_metrics(rec, batch=2)
    assert m["useful_tokens"] == 80 and m["tokens_per_forward"] == pytest.approx(40 / 9)
    assert m["cap_hit_share"] == 1.0


def test_canvas_length_knob_changes_the_canvas_and_restores_the_model(diffusion_model):
    spec = get("diffusiongemma-tiny")
    dec = ENGINES["hf-diffusion"].factory(diffusion_model, spec, knobs("hf-diffusion", max_denoising_steps=2,
                                                                       canvas_length=8))
    ids, mask = synthetic_prompts(1, 4, 512, 3, seed=0, device="cpu")
    rec = dec.generate(ids, mask, gen_length=16, fixed_length=True, seed=0, clock=Clock())
    assert rec.canvas_length == 8 and len(rec.canvas_times_s) == 2 and rec.nfe == 4
    assert diffusion_model.config.canvas_length == 16


def test_ar_record_times_every_token(ar_model):
    spec = get("gemma4-tiny")
    dec = ENGINES["hf-autoregressive"].factory(ar_model, spec, knobs("hf-autoregressive"))
    ids, mask = synthetic_prompts(3, 6, 512, 3, seed=0, device="cpu")
    rec = dec.generate(ids, mask, gen_length=12, fixed_length=True, seed=0, clock=Clock())
    assert rec.nfe == 12 and rec.useful_tokens == [12, 12, 12]
    assert len(rec.token_times_s) == 12 and rec.first_output_s == rec.token_times_s[0]
    assert rec.token_times_s == sorted(rec.token_times_s) and rec.token_times_s[-1] <= rec.e2e_s
    torch.manual_seed(0)
    ref = ar_model.generate(ids, attention_mask=mask, max_new_tokens=12, min_new_tokens=12, do_sample=False)
    assert ref[:, 6:].tolist() == rec.tokens
    m = per_rep_metrics(rec, batch=3)
    assert m["tpot_s"] == pytest.approx((rec.e2e_s - rec.first_output_s) / 11)
    assert m["tokens_per_forward"] == 1.0
