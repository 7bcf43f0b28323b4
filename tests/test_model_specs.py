"""Model specs: the closed-form parameter formula equals the built module for every spec (at reduced and
full depth, on the meta device: no storage), the full-size 26B-A4B counts match the model cards, and
synthetic weights are materialised straight at their final dtype with ties and buffers intact."""

from __future__ import annotations

import pytest
import torch

from dgbench.errors import ConfigError
from dgbench.models.params import count_module, formula, human
from dgbench.models.registry import SPECS, get
from dgbench.models.synthetic import build_on_meta, build_synthetic, count_parameters

SMALL = ["diffusiongemma-tiny", "gemma4-tiny", "diffusiongemma-small", "gemma4-small", "llama-masked-tiny"]


@pytest.mark.parametrize("name", sorted(SPECS))
def test_formula_equals_module(name):
    spec = get(name)
    for layers in (1, 2, None):   # 2 layers: one sliding and one global layer for Gemma 4 (last is global)
        built = count_module(build_on_meta(spec, num_layers=layers))
        assert built == formula(spec, num_layers=layers), (name, layers)
    assert all(p.device.type == "meta" for p in build_on_meta(spec, num_layers=1).parameters())


def test_meta_count_dedups_ties():
    model = build_on_meta(get("diffusiongemma-26b-a4b"), num_layers=2)
    assert model.lm_head.weight is model.model.decoder.embed_tokens.weight
    enc = model.model.encoder.language_model.layers[0].experts.gate_up_proj
    assert enc is model.model.decoder.layers[0].experts.gate_up_proj   # encoder and decoder share layers
    assert count_module(model).total == count_parameters(model)


@pytest.mark.parametrize("name", ["diffusiongemma-26b-a4b", "gemma4-26b-a4b"])
def test_26b_a4b_matches_model_card(name):
    spec = get(name)
    counts = formula(spec)
    # Model cards: 25.2B total ("26B" in the name), 3.8B active per token, embeddings included.
    assert spec.total_params_advertised == 25.2e9 and spec.active_params_advertised == 3.8e9
    assert abs(counts.total / 25.2e9 - 1) < 0.02 and abs(counts.total / 26e9 - 1) < 0.04
    assert abs(counts.active / 3.8e9 - 1) < 0.02
    assert counts.embedding == 262_144 * 2816          # tied head counted once
    assert abs(counts.active_non_embedding / 3.08e9 - 1) < 0.01


def test_published_non_embedding_counts():
    # LLaDA paper: 8.02B total, 6.98B non-embedding; Qwen2.5-7B report: 7.61B total, 6.53B non-embedding.
    llada, dream = formula(get("llada-8b")), formula(get("dream-7b"))
    assert human(llada.total) == "8.02B" and human(llada.active_non_embedding) == "6.98B"
    assert human(dream.total) == "7.62B" and human(dream.active_non_embedding) == "6.53B"
    assert abs(formula(get("gemma4-12b")).total / 11.95e9 - 1) < 0.01
    assert abs(formula(get("gemma4-12b-assistant")).total / 423e6 - 1) < 0.01


def test_12b_decoder_matches_gemma4_unified():
    """Google ships the 12B as gemma4_unified; its text decoder has the modules of gemma4's."""
    from transformers import Gemma4UnifiedForCausalLM, Gemma4UnifiedTextConfig

    spec = get("gemma4-12b")
    text = {**spec.text_config, "num_hidden_layers": 2}
    with torch.device("meta"):
        unified = Gemma4UnifiedForCausalLM(Gemma4UnifiedTextConfig(**text))
    ours = build_on_meta(spec, num_layers=2)
    shapes = lambda m: sorted((n.removeprefix("model."), tuple(p.shape)) for n, p in m.named_parameters())
    assert shapes(unified) == shapes(ours)


def test_drafter_is_wired_to_its_target():
    target, drafter = get("gemma4-12b"), get("gemma4-12b-assistant")
    assert target.drafter == drafter.name and drafter.extra_config["backbone_hidden_size"] == 3840
    model = build_on_meta(drafter, num_layers=2)
    attn = model.model.layers[0].self_attn
    assert not hasattr(attn, "k_proj")                                 # reads the target's K/V
    assert model.pre_projection.weight.shape == (1024, 2 * 3840)


def test_every_spec_cites_its_numbers():
    for spec in SPECS.values():
        assert spec.source, spec.name
    for name in ("diffusiongemma-26b-a4b", "gemma4-26b-a4b", "gemma4-12b", "llada-8b", "dream-7b"):
        assert get(name).checkpoint
    assert get("llada-8b").special_tokens["mask"] == 126_336
    assert get("diffusiongemma-26b-a4b").canvas_length == 256


@pytest.mark.parametrize("name", SMALL)
def test_small_specs_build_as_before(name):
    spec = get(name)
    model = build_synthetic(spec)
    assert not model.training and all(p.device.type == "cpu" for p in model.parameters())
    assert count_parameters(model) == formula(spec).total
    again = build_synthetic(spec)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    if spec.architecture == "DiffusionGemmaForBlockDiffusion":
        # Constructor-filled buffers that _init_weights does not cover survive (all ones).
        for layer in model.model.encoder.language_model.layers:
            assert torch.equal(layer.layer_scalar, torch.ones(1))
        assert model.lm_head.weight is model.model.decoder.embed_tokens.weight
    elif hasattr(model, "lm_head") and spec.text_config.get("tie_word_embeddings", True):
        assert model.lm_head.weight is model.get_input_embeddings().weight


def test_materialised_at_final_dtype_without_a_float32_copy():
    from dgbench.models.memory import measure_peak_bytes

    spec = get("diffusiongemma-small")
    peak, model = measure_peak_bytes(lambda: build_synthetic(spec, dtype="bfloat16"))
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    final = sum(p.numel() * 2 for p in {id(p): p for p in model.parameters()}.values())
    largest_f32 = max(p.numel() for p in model.parameters()) * 4
    # The only extra is the never-written torch.empty of one parameter while it is moved to meta; building
    # in float32 and casting (the old path) would peak at 3x the final size.
    assert peak <= final + largest_f32 + 2**20, (peak, final)


def test_bad_dtype_is_a_config_error():
    with pytest.raises(ConfigError, match="did you mean 'bfloat16'"):
        build_synthetic(get("gemma4-tiny"), dtype="bfloat")
