"""Real checkpoints, offline: save_pretrained round trips, the HF cache by repo id, and the errors a
missing checkpoint or unflagged remote code give."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from dgbench.errors import ConfigError
from dgbench.models.loading import load_model, load_pretrained
from dgbench.models.registry import get
from dgbench.models.synthetic import build_synthetic


def _saved(tmp_path_factory, spec_name: str, seed: int):
    model = build_synthetic(get(spec_name), seed=seed)
    path = tmp_path_factory.mktemp(spec_name)
    model.save_pretrained(path)
    return model, path


@pytest.fixture(scope="module")
def diffusion_dir(tmp_path_factory):
    return _saved(tmp_path_factory, "diffusiongemma-tiny", seed=3)


@pytest.fixture(scope="module")
def gemma_dir(tmp_path_factory):
    return _saved(tmp_path_factory, "gemma4-tiny", seed=4)


def test_diffusiongemma_round_trip(diffusion_dir):
    model, path = diffusion_dir
    loaded = load_pretrained(path)
    assert type(loaded).__name__ == "DiffusionGemmaForBlockDiffusion" and not loaded.training
    assert loaded.model.encoder.vision_tower is None                    # text only, as the synthetic one
    assert loaded.lm_head.weight is loaded.model.decoder.embed_tokens.weight
    prompt, canvas = torch.randint(4, 512, (2, 8)), torch.randint(4, 512, (2, 16))
    with torch.no_grad():
        expected = model(input_ids=prompt, decoder_input_ids=canvas).logits       # (B, canvas, V)
        got = loaded(input_ids=prompt, decoder_input_ids=canvas).logits
    assert torch.equal(expected, got)


def test_gemma4_round_trip_through_the_spec(gemma_dir):
    model, path = gemma_dir
    spec = dataclasses.replace(get("gemma4-tiny"), checkpoint=str(path))
    loaded = load_model(spec, dtype="float32")
    ids = torch.randint(4, 512, (2, 12))
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, loaded(input_ids=ids).logits)
    assert load_model(spec, dtype="bfloat16").dtype == torch.bfloat16


def test_repo_id_from_the_local_cache(gemma_dir, tmp_path, monkeypatch):
    from huggingface_hub import constants

    model, _ = gemma_dir
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    repo = tmp_path / "models--someone--tiny-gemma"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    model.save_pretrained(repo / "snapshots" / ("0" * 40))
    loaded = load_pretrained("someone/tiny-gemma")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))


def test_missing_checkpoint_names_every_place_looked(tmp_path, monkeypatch):
    from huggingface_hub import constants

    with pytest.raises(ConfigError, match="looked for .*config.json") as err:
        load_pretrained(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(err.value) and "\n" not in str(err.value)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ConfigError) as err:
        load_model(get("diffusiongemma-26b-a4b"))
    message = str(err.value)
    assert "google/diffusiongemma-26B-A4B-it/config.json" in message                # as a local path
    assert str(tmp_path / "hub" / "models--google--diffusiongemma-26B-A4B-it") in message   # and in the cache
    assert "nothing is downloaded" in message and "\n" not in message


def test_remote_code_needs_the_flag(gemma_dir, tmp_path):
    _, path = gemma_dir
    for name in ("config.json", "model.safetensors"):
        (tmp_path / name).write_bytes((path / name).read_bytes())
    config = json.loads((tmp_path / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "configuration_llada.LLaDAConfig", "AutoModel": "modeling_llada.LLaDAModelLM"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="needs remote code .*trust_remote_code=True") as err:
        load_pretrained(tmp_path)
    assert str(tmp_path) in str(err.value) and "\n" not in str(err.value)


def test_synthetic_only_spec_has_no_checkpoint():
    with pytest.raises(ConfigError, match="no checkpoint"):
        load_model(get("gemma4-tiny"))


def test_mtp_drafter_builds_and_round_trips(tmp_path):
    """transformers 5.23 cannot build a Gemma 4 assistant as shipped (every layer KV-shared makes
    kv_sharing_modes raise); dgbench builds and loads one anyway."""
    text = dict(vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, head_dim=8, global_head_dim=16, num_global_key_value_heads=1,
                attention_k_eq_v=True, sliding_window=16, max_position_embeddings=128)
    spec = dataclasses.replace(get("gemma4-12b-assistant"), name="assistant-test", text_config=text,
                               extra_config={"backbone_hidden_size": 48}, checkpoint=str(tmp_path))
    model = build_synthetic(spec)
    assert model.pre_projection.weight.shape == (32, 96) and model.lm_head.weight is model.get_input_embeddings().weight
    model.save_pretrained(tmp_path)
    loaded = load_model(spec)
    assert type(loaded).__name__ == "Gemma4AssistantForCausalLM"
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
