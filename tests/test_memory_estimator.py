"""The memory estimator against measured peaks, and `dgbench fit`.

Measured peak = bytes of the model's parameters and buffers + the peak of tensor bytes allocated during a
real generate call, read from torch.profiler's allocator records (dgbench.models.memory.measure_peak_bytes):
exactly the tensors torch allocates on the CPU, no RSS noise. The estimator must land within 15%.
"""

from __future__ import annotations

import pytest
import torch

from dgbench.cli import main
from dgbench.models.memory import estimate, kv_cache_bytes, measure_peak_bytes, weight_bytes
from dgbench.models.params import formula
from dgbench.models.registry import get
from dgbench.models.synthetic import build_config, build_synthetic


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)   # tiny models: a second thread only spins on a shared 2-core machine
    yield
    torch.set_num_threads(before)


_MODELS: dict = {}


def _model(name: str, dtype: str):
    if (name, dtype) not in _MODELS:
        _MODELS[(name, dtype)] = build_synthetic(get(name), dtype=dtype)
    return _MODELS[(name, dtype)]


def _resident(model) -> int:
    tensors = {id(t): t for t in [*model.parameters(), *model.buffers()]}.values()
    return sum(t.numel() * t.element_size() for t in tensors)


def _autoregressive(model, B, P, G):
    ids = torch.randint(4, model.config.vocab_size, (B, P))
    return lambda: model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=G, min_new_tokens=G,
                                  do_sample=False, pad_token_id=0)


def _block_diffusion(model, B, P, G):
    from dgbench.backends.diffusiongemma import DiffusionGemmaDenoiser
    from dgbench.decoding.diffusion import generate
    from dgbench.decoding.entropy_bound import EntropyBoundSpec

    spec = EntropyBoundSpec(vocab_size=model.config.text_config.vocab_size, canvas_length=model.config.canvas_length,
                            max_denoising_steps=2, adaptive_stopping=False)
    ids = torch.randint(4, spec.vocab_size, (B, P))
    return lambda: generate(DiffusionGemmaDenoiser(model), spec, ids, None, G)


def _masked_diffusion(model, B, P, G):
    from dgbench.backends.masked_lm import make_denoiser
    from dgbench.decoding.masked import MaskedDiffusionSpec, generate

    spec = MaskedDiffusionSpec(mask_token_id=3, gen_length=G, block_length=G, steps=2)
    ids = torch.randint(4, model.config.vocab_size, (B, P))
    return lambda: generate(make_denoiser(model), spec, ids, torch.ones_like(ids, dtype=torch.bool))


RUNNERS = {"gemma4-small": _autoregressive, "diffusiongemma-small": _block_diffusion,
           "llama-masked-tiny": _masked_diffusion}
CASES = [  # (model, weights dtype, batch, prompt, generated)
    ("gemma4-small", "float32", 1, 64, 8), ("gemma4-small", "float32", 4, 256, 8),
    ("gemma4-small", "float32", 1, 512, 8), ("gemma4-small", "bfloat16", 4, 256, 8),
    ("diffusiongemma-small", "float32", 1, 64, 64), ("diffusiongemma-small", "float32", 4, 64, 64),
    ("diffusiongemma-small", "float32", 4, 256, 64), ("diffusiongemma-small", "bfloat16", 4, 256, 64),
    ("llama-masked-tiny", "float32", 1, 64, 64), ("llama-masked-tiny", "float32", 8, 256, 256),
    ("llama-masked-tiny", "bfloat16", 4, 448, 64),
]
FORMAT = {"float32": "fp32", "bfloat16": "bf16"}


@pytest.mark.parametrize("name, dtype, B, P, G", CASES)
def test_estimate_within_15_percent_of_measured(name, dtype, B, P, G):
    model = _model(name, dtype)
    torch.manual_seed(0)
    with torch.no_grad():
        transient, _ = measure_peak_bytes(RUNNERS[name](model, B, P, G))
    measured = _resident(model) + transient
    est = estimate(get(name), batch=B, context=P + G, prompt=P, dtype=FORMAT[dtype])
    assert abs(est.peak - measured) / measured < 0.15, (est.rows(), measured)


def test_weight_formats():
    spec = get("gemma4-26b-a4b")
    counts = formula(spec)
    body, emb = counts.total - counts.embedding, counts.embedding
    assert weight_bytes(spec, "bf16")[0] == 2 * counts.total
    assert weight_bytes(spec, "fp8")[0] == body + 2 * emb
    assert weight_bytes(spec, "nvfp4")[0] == int(body * (0.5 + 1 / 16) + 2 * emb)   # fp8 scale per 16 values
    assert weight_bytes(spec, "int4")[0] == int(body * (0.5 + 4 / 128) + 2 * emb)


def test_kv_cache_per_layer_type():
    cfg = build_config(get("gemma4-26b-a4b"))
    # 25 sliding layers (8 KV heads x 256, capped at the 1024 window) and 5 global (2 KV heads x 512).
    sliding = 25 * 2 * 8 * 256 * 2 * 1024
    full = lambda T: 5 * 2 * 2 * 512 * 2 * T
    assert kv_cache_bytes(cfg, 1, 8192, 2) == sliding + full(8192)
    assert kv_cache_bytes(cfg, 1, 512, 2) == 25 * 2 * 8 * 256 * 2 * 512 + full(512)
    dg = estimate(get("diffusiongemma-26b-a4b"), batch=1, context=8192)
    assert dg.kv_cache == kv_cache_bytes(cfg, 1, 8192, 2, appended=256)
    assert dg.logits == 6 * 256 * 262_144 * 4                 # the entropy-bound step's float32 buffers
    assert estimate(get("llada-8b"), batch=1, context=1024).kv_cache == 0


def test_quantised_diffusiongemma_fits_the_advertised_18_gb():
    est = estimate(get("diffusiongemma-26b-a4b"), batch=1, context=4096, dtype="nvfp4")
    assert 14e9 < est.weights < 16.5e9 and est.peak < 18 * 2**30


def _fit(capsys, *args):
    code = main(["fit", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_fit_exit_codes(capsys):
    code, out, _ = _fit(capsys, "diffusiongemma-26b-a4b", "--profile", "h100-sxm", "--context", "8192")
    assert code == 0 and "fits:" in out and "logits buffers" in out and "KV cache" in out
    code, out, _ = _fit(capsys, "diffusiongemma-26b-a4b", "--profile", "rtx-5090", "--context", "8192")
    assert code == 1 and "does not fit" in out
    code, out, _ = _fit(capsys, "diffusiongemma-26b-a4b", "--profile", "rtx-5090", "--context", "8192",
                        "--dtype", "int4")
    assert code == 0


@pytest.mark.parametrize("args, expected", [
    (["diffusiongema-26b-a4b", "--profile", "h100-sxm", "--context", "10"], "did you mean 'diffusiongemma-26b-a4b'"),
    (["gemma4-26b-a4b", "--profile", "h100-sxn", "--context", "10"], "did you mean 'h100-sxm'"),
    (["gemma4-26b-a4b", "--profile", "h100-sxm", "--context", "10", "--dtype", "nvfp"], "did you mean 'nvfp4'"),
    (["gemma4-26b-a4b", "--profile", "h100-sxm", "--context", "0"], "--context must be at least 1"),
])
def test_fit_bad_input_is_one_line(capsys, args, expected):
    code, out, err = _fit(capsys, *args)
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1 and not out
