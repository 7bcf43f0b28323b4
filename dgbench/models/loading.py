"""Real checkpoints, offline: a local directory or a repo id already in the Hugging Face cache.

Nothing is downloaded: every from_pretrained call passes local_files_only=True, and a repo id is looked
up in the local cache only. Remote code (a config.json with `auto_map`: LLaDA, Dream) runs only when the
caller passes trust_remote_code=True. A checkpoint that is not there is a ConfigError naming every place
that was looked at.
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

from dgbench.errors import ConfigError
from dgbench.models.registry import ModelSpec
from dgbench.models.synthetic import all_layers_kv_shared

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def hub_cache_dir() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def resolve_checkpoint(location: str | Path) -> Path:
    """The directory holding config.json: `location` itself, or a cached snapshot of the repo id."""
    root = Path(location).expanduser()
    looked = [str(root.resolve() / "config.json")]
    if (root / "config.json").is_file():
        return root
    text = str(location)
    if _REPO_ID.match(text) and not root.exists():
        from huggingface_hub import try_to_load_from_cache

        cache = hub_cache_dir()
        found = try_to_load_from_cache(text, "config.json", cache_dir=cache)
        if isinstance(found, str) and Path(found).is_file():
            return Path(found).parent
        looked.append(f"{cache / ('models--' + text.replace('/', '--'))}/snapshots/*/config.json "
                      "(Hugging Face cache; HF_HOME / HF_HUB_CACHE move it)")
    raise ConfigError(f"checkpoint {text!r} not found: looked for {' and '.join(looked)}; nothing is downloaded "
                      "(write one with save_pretrained, or fetch it with `hf download` on a machine with network)")


def read_config(root: Path) -> dict:
    try:
        return json.loads((root / "config.json").read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{root / 'config.json'}: not valid JSON ({exc})") from None


def _check_remote_code(root: Path, raw: dict, location, trust_remote_code: bool) -> dict:
    auto_map = raw.get("auto_map") or {}
    if auto_map and not trust_remote_code:
        raise ConfigError(f"checkpoint {str(location)!r} ({root}) needs remote code (config.json auto_map: "
                          f"{', '.join(sorted(auto_map))}); pass trust_remote_code=True to run its Python files")
    return auto_map


def _model_class(raw: dict, auto_map: dict):
    """Remote code through its own auto class (a masked LM's if it declares one, as LLaDA/Dream-style
    checkpoints are loaded by their authors); a transformers architecture by its own class; anything
    else as a causal LM."""
    import transformers

    if auto_map:
        return transformers.AutoModelForMaskedLM if "AutoModelForMaskedLM" in auto_map else transformers.AutoModel
    architectures = raw.get("architectures") or []
    if any(a.endswith("ForMaskedLM") for a in architectures):
        return transformers.AutoModelForMaskedLM
    for name in architectures:
        if hasattr(transformers, name):
            return getattr(transformers, name)
    return transformers.AutoModelForCausalLM


def _has_accelerate() -> bool:
    import importlib.util

    return importlib.util.find_spec("accelerate") is not None


def load_pretrained(location: str | Path, *, trust_remote_code: bool = False, dtype: str = "float32",
                    device: str = "cpu", text_only: bool = True):
    """A model from a local directory or the local HF cache, in eval mode, on `device` in `dtype`.

    With accelerate installed, weights are placed on `device` as they are read (transformers' device_map
    needs it); without, they are read into CPU memory and then moved. `text_only` drops DiffusionGemma's vision tower, which the text path never calls."""
    import torch
    from transformers import AutoConfig

    root = resolve_checkpoint(location)
    raw = read_config(root)
    auto_map = _check_remote_code(root, raw, location, trust_remote_code)
    kwargs = dict(local_files_only=True, trust_remote_code=trust_remote_code)
    config = AutoConfig.from_pretrained(root, **kwargs)
    cls = _model_class(raw, auto_map)
    if device != "cpu" and _has_accelerate():
        kwargs["device_map"] = {"": device}       # weights go to the device as they are read
    # The MTP drafters cannot be built by transformers 5.23 as shipped (see all_layers_kv_shared).
    drafter = raw.get("model_type") in ("gemma4_assistant", "gemma4_unified_assistant")
    with all_layers_kv_shared() if drafter else contextlib.nullcontext():
        model = cls.from_pretrained(root, config=config, dtype=getattr(torch, dtype), **kwargs).to(device)
    if text_only and type(model).__name__ == "DiffusionGemmaForBlockDiffusion":
        model.model.encoder.vision_tower = None
        model.model.encoder.embed_vision = None
    return model.eval()


def load_model(spec: ModelSpec, device: str = "cpu", dtype: str = "float32", trust_remote_code: bool = False):
    """The spec's real checkpoint (`spec.checkpoint`, or `spec.weights` when that is a path), offline.

    The class is the checkpoint's own (config.json `architectures`): a hub checkpoint of a multimodal model
    loads as that model, where `build_synthetic` builds the spec's text-only architecture."""
    location = spec.checkpoint or (spec.weights if spec.weights != "synthetic" else None)
    if location is None:
        raise ConfigError(f"model {spec.name!r} has no checkpoint (synthetic weights only); "
                          "use build_synthetic, or register a spec with checkpoint=PATH_OR_REPO_ID")
    return load_pretrained(location, trust_remote_code=trust_remote_code, dtype=dtype, device=device)
