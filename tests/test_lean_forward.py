"""The lean decoder stack (dgbench/backends/diffusiongemma_lean.py) against transformers' own layers: the same
logits bit for bit, with and without padded prompts (boolean masks vs sdpa's mask-free GQA path), and the
engine really takes it, so test_engine_parity's token identity covers it too."""

import pytest
import torch

from dgbench.backends.diffusiongemma import DiffusionGemmaDenoiser
from dgbench.backends.diffusiongemma_lean import LeanDecoderStack
from dgbench.decoding.diffusion import generate
from dgbench.decoding.entropy_bound import EntropyBoundSpec
from dgbench.models.registry import get
from dgbench.models.synthetic import build_synthetic


@pytest.fixture(scope="module")
def model():
    return build_synthetic(get("diffusiongemma-tiny"))


def _logits(model, lean: bool, ids, mask, steps: int = 3):
    """Logits of a few denoising steps (self-conditioning on the previous one) on a fixed canvas."""
    L = model.config.canvas_length
    with torch.inference_mode():
        den = DiffusionGemmaDenoiser(model)
        den.begin(ids.shape[0], ids.shape[1] + L)
        assert den.lean is not None, "the lean stack was refused on the tiny model"
        if not lean:
            den.lean = None
        den.encode(ids, mask, torch.arange(ids.shape[1], dtype=torch.int32).unsqueeze(0))
        dmask = torch.nn.functional.pad(mask.bool(), (0, L), value=True)
        ctx = den.canvas_context(dmask, torch.arange(ids.shape[1], ids.shape[1] + L, dtype=torch.int32).unsqueeze(0))
        canvas = torch.randint(0, model.config.text_config.vocab_size, (ids.shape[0], L),
                               generator=torch.Generator().manual_seed(3))
        out, sc_logits, sc_probs = [], None, None
        for _ in range(steps):
            logits = den.denoise(canvas, sc_logits, sc_probs, ctx)
            out.append(logits.clone())
            sc_logits, sc_probs = logits, torch.softmax(logits, dim=-1, dtype=torch.float32)
        return out


@pytest.mark.parametrize("padded", [False, True])
def test_lean_stack_logits_are_bit_identical(model, padded):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 512, (3, 10), generator=g)
    mask = torch.ones_like(ids)
    if padded:
        mask[0, :4] = 0
        mask[2, :7] = 0
    for a, b in zip(_logits(model, True, ids, mask), _logits(model, False, ids, mask)):
        assert torch.equal(a, b)


def test_lean_stack_is_refused_where_it_would_not_match(model):
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config.get_text_config(decoder=True))
    with torch.inference_mode():
        assert LeanDecoderStack.supports(model, cache)
    assert not LeanDecoderStack.supports(model, cache)          # gradients on: training keeps the modules
    text = model.config.text_config
    old = text._experts_implementation
    try:
        text._experts_implementation = "eager"
        with torch.inference_mode():
            assert not LeanDecoderStack.supports(model, cache)
    finally:
        text._experts_implementation = old


def test_lean_and_module_paths_give_the_same_tokens(model):
    spec = EntropyBoundSpec(vocab_size=512, canvas_length=16, max_denoising_steps=5, eos_token_id=None,
                            pad_token_id=None)
    ids = torch.randint(3, 512, (2, 8), generator=torch.Generator().manual_seed(1))
    runs = []
    for lean in (True, False):
        old = LeanDecoderStack.supports
        if not lean:
            LeanDecoderStack.supports = staticmethod(lambda m, c: False)
        try:
            torch.manual_seed(5)
            runs.append(generate(DiffusionGemmaDenoiser(model), spec, ids, None, 32).sequences)
        finally:
            LeanDecoderStack.supports = old
    assert torch.equal(*runs)


@pytest.mark.parametrize("padded", [False, True])
def test_lean_encoder_writes_the_same_cache(model, padded):
    """The lean encoder (which stops the last layer once its keys and values are appended) leaves the very
    cache transformers' encoder writes: prompt, then a committed canvas on top."""
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(3, 512, (3, 9), generator=g)
    mask = torch.ones_like(ids)
    if padded:
        mask[1, :5] = 0
    canvas = torch.randint(3, 512, (3, model.config.canvas_length), generator=g)
    caches = []
    for lean in (True, False):
        with torch.inference_mode():
            den = DiffusionGemmaDenoiser(model)
            den.begin(3, 9 + canvas.shape[1])
            assert den.lean_encoder is not None
            if not lean:
                den.lean_encoder = None
            den.encode(ids, mask, torch.arange(9, dtype=torch.int32).unsqueeze(0))
            grown = torch.nn.functional.pad(mask, (0, canvas.shape[1]), value=1)
            den.encode(canvas, grown, torch.arange(9, 9 + canvas.shape[1], dtype=torch.int32).unsqueeze(0))
            caches.append([(layer.keys.clone(), layer.values.clone()) for layer in den.cache.layers])
    for (k1, v1), (k2, v2) in zip(*caches):
        assert torch.equal(k1, k2) and torch.equal(v1, v2)
