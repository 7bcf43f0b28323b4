"""dgbench's canvas loop against transformers' DiffusionGemmaForBlockDiffusion.generate: same seed and
settings must give bit-identical sequences, over many seeds and configurations."""

import copy

import pytest
import torch
from transformers.models.diffusion_gemma.generation_diffusion_gemma import EntropyBoundSamplerConfig

from dgbench.backends.diffusiongemma import DiffusionGemmaDenoiser
from dgbench.decoding.diffusion import generate
from dgbench.decoding.entropy_bound import EntropyBoundSpec
from dgbench.models.registry import get
from dgbench.models.synthetic import build_synthetic

V = 512
SEEDS = range(20)


@pytest.fixture(scope="module")
def models():
    plain = build_synthetic(get("diffusiongemma-tiny"))
    # A "confident" variant: scaling the final norm sharpens every prediction, so the adaptive stop
    # (stable argmax and mean entropy < 0.005) really fires, for some sequences of a batch and not others.
    confident = copy.deepcopy(plain)
    with torch.no_grad():
        confident.model.decoder.norm.weight.mul_(30)
    return {"plain": plain, "confident": confident}


def reference(model, ids, mask, spec: EntropyBoundSpec, new_tokens: int, seed: int):
    kwargs = {}
    if spec.adaptive_stopping:
        kwargs.update(stability_threshold=spec.stability_threshold, confidence_threshold=spec.confidence_threshold)
    else:
        kwargs.update(stability_threshold=None, confidence_threshold=None)
    old = model.config.canvas_length
    model.config.canvas_length = spec.canvas_length
    try:
        torch.manual_seed(seed)
        return model.generate(ids, attention_mask=mask, max_new_tokens=new_tokens,
                              max_denoising_steps=spec.max_denoising_steps, t_min=spec.t_min, t_max=spec.t_max,
                              sampler_config=EntropyBoundSamplerConfig(entropy_bound=spec.entropy_bound),
                              eos_token_id=spec.eos_token_id, pad_token_id=spec.pad_token_id, **kwargs)
    finally:
        model.config.canvas_length = old


def ours(model, ids, mask, spec, new_tokens, seed):
    old = model.config.canvas_length
    model.config.canvas_length = spec.canvas_length
    try:
        torch.manual_seed(seed)
        return generate(DiffusionGemmaDenoiser(model), spec, ids, mask, new_tokens)
    finally:
        model.config.canvas_length = old


def prompts(batch: int, lengths: list[int], seed: int):
    """Left-padded prompts of different lengths and their attention mask."""
    g = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.zeros(batch, width, dtype=torch.long)
    mask = torch.zeros(batch, width, dtype=torch.long)
    for i in range(batch):
        n = lengths[i % len(lengths)]
        ids[i, width - n:] = torch.randint(3, V, (n,), generator=g)
        mask[i, width - n:] = 1
    return ids, mask


CONFIGS = {
    # name: (model, batch, prompt lengths, new tokens, spec kwargs)
    "b1-one-canvas-fixed-steps": ("plain", 1, [8], 16, dict(canvas_length=16, max_denoising_steps=6,
                                                               adaptive_stopping=False)),
    "b4-three-canvases-adaptive": ("confident", 4, [8], 48, dict(canvas_length=16, max_denoising_steps=8)),
    "b4-mixed-prompt-lengths": ("confident", 4, [3, 8, 5, 11], 40, dict(canvas_length=16, max_denoising_steps=6)),
    "b1-three-canvases-adaptive-eos": ("confident", 1, [6], 24, dict(canvas_length=8, max_denoising_steps=10,
                                                                      eos_token_id=5, t_min=0.3, t_max=0.9)),
    "b4-no-eos-wide-bound": ("plain", 4, [7, 4], 32, dict(canvas_length=16, max_denoising_steps=4,
                                                          entropy_bound=2.0, eos_token_id=None, pad_token_id=None)),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_bit_identical_to_transformers_generate(models, name):
    model_key, batch, lengths, new_tokens, kw = CONFIGS[name]
    model = models[model_key]
    spec = EntropyBoundSpec(vocab_size=V, **kw)
    early_stops = 0
    for seed in SEEDS:
        ids, mask = prompts(batch, lengths, seed)
        ref = reference(model, ids, mask, spec, new_tokens, seed)
        got = ours(model, ids, mask, spec, new_tokens, seed)
        assert torch.equal(ref.sequences, got.sequences), f"{name} seed {seed}: sequences differ"
        # Same bookkeeping too: transformers' tokens per forward from our per-sequence pass counts.
        new = got.sequences[:, ids.shape[1]:]
        valid = (new != spec.pad_token_id).sum(-1) if spec.pad_token_id is not None else \
            torch.full((batch,), new.shape[1])
        assert torch.allclose(ref.tokens_per_forward, valid / got.passes_per_sequence)
        # A sequence that stopped early took part in fewer passes than the batch made.
        early_stops += int((got.passes_per_sequence < got.nfe).sum()) + \
            sum(s < spec.max_denoising_steps for s in got.steps_per_canvas)
    if spec.adaptive_stopping and model_key == "confident":
        assert early_stops > 0, "the adaptive stop never fired: this config would not test it"


def test_trajectory_hook_sees_every_step(models):
    spec = EntropyBoundSpec(vocab_size=V, canvas_length=16, max_denoising_steps=5, adaptive_stopping=False)
    events = []
    ids, mask = prompts(2, [6], 0)
    torch.manual_seed(0)
    model = models["plain"]
    model.config.canvas_length = 16
    out = generate(DiffusionGemmaDenoiser(model), spec, ids, mask, 32, on_step=events.append)
    assert out.nfe == 10 and len(events) == 10
    assert [(e.canvas, e.step) for e in events[:6]] == [(0, i) for i in range(5)] + [(1, 0)]
    assert events[0].accepted.shape == (2, 16) and events[0].entropy.shape == (2, 16)
    assert all(e.accepted.sum() >= 1 for e in events), "entropy-bound acceptance always accepts one token"


def test_compiled_engine_gives_the_reference_tokens(models):
    """compile=True fuses kernels, which may round differently; on this model the tokens must still match."""
    from dgbench.backends import ENGINES
    from dgbench.scenarios.generation import synthetic_prompts
    from dgbench.telemetry.timing import Clock
    from dgbench.validation import Location, validate_mapping

    spec = get("diffusiongemma-tiny")
    model = models["plain"]
    knobs = {"max_denoising_steps": 3}
    ref = ENGINES["hf-diffusion"].factory(model, spec, validate_mapping(knobs, ENGINES["hf-diffusion"].knobs,
                                                                      Location("t")))
    fast = ENGINES["dgbench-diffusion"].factory(model, spec, validate_mapping(
        {**knobs, "compile": True}, ENGINES["dgbench-diffusion"].knobs, Location("t")))
    ids, mask = synthetic_prompts(2, 8, V, 3, seed=0, device="cpu")
    for seed in range(3):
        a = ref.generate(ids, mask, 32, fixed_length=True, seed=seed, clock=Clock())
        b = fast.generate(ids, mask, 32, fixed_length=True, seed=seed, clock=Clock())
        assert a.tokens == b.tokens and a.nfe == b.nfe


def test_fixed_positions_stay_in_place_and_blanks_are_filled(models):
    """In-place infilling: known output positions sit in the canvas from the first step and are never
    renoised; only the blanks are sampled. A two-canvas template checks the per-canvas slicing."""
    from dgbench.backends import ENGINES
    from dgbench.scenarios.generation import synthetic_prompts
    from dgbench.telemetry.timing import Clock
    from dgbench.validation import Location, validate_mapping

    spec = get("diffusiongemma-tiny")
    dec = ENGINES["dgbench-diffusion"].factory(models["plain"], spec, validate_mapping(
        {"max_denoising_steps": 3}, ENGINES["dgbench-diffusion"].knobs, Location("t")))
    ids, mask = synthetic_prompts(1, 6, V, 3, seed=0, device="cpu")
    template = [None if i % 3 == 0 else 100 + i for i in range(20)]   # 20 positions: two canvases of 16
    rec = dec.fill_template(ids, mask, template, seed=0, clock=Clock())
    out = rec.tokens[0]
    assert len(out) == 20
    assert all(o == t for o, t in zip(out, template) if t is not None), "a fixed position changed"
    blanks = [o for o, t in zip(out, template) if t is None]
    assert len(blanks) == 7 and all(0 <= b < V for b in blanks)
    assert rec.nfe == 6 and rec.steps_per_canvas == [3, 3]
    assert rec.useful_tokens == [7], "only the filled blanks count as generated tokens"


@pytest.mark.parametrize("shape", [(64, 4096), (3, 512), (1, 17)])
def test_rowwise_multinomial_draws_what_torch_multinomial_draws(shape):
    """decoding/multinomial.py samples only the kept rows but must give torch.multinomial's tokens there and
    leave the global generator exactly where torch.multinomial leaves it (the renoising draw comes next)."""
    from dgbench.decoding.multinomial import multinomial_rows

    for seed in range(5):
        g = torch.Generator().manual_seed(seed)
        probs = torch.softmax(3 * torch.randn(shape, generator=g), dim=-1)
        keep = torch.rand(shape[0], generator=g) < 0.3
        keep[0] = True
        torch.manual_seed(seed)
        expected = torch.multinomial(probs, 1).squeeze(1)
        after_reference = torch.randint(0, 1 << 30, (4,))
        torch.manual_seed(seed)
        got = multinomial_rows(probs, keep)
        after_ours = torch.randint(0, 1 << 30, (4,))
        assert torch.equal(got[keep], expected[keep]) and torch.equal(after_ours, after_reference)
        assert torch.all(got[~keep] == 0)
