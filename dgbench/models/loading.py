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


def hub_cache_dirs() -> list[Path]:
    """Where a repo id is looked for, read from the environment now (not at import): HF_HUB_CACHE, then
    HF_HOME/hub, then huggingface_hub's own setting (read when it was imported), then the default
    ~/.cache/huggingface/hub: huggingface_hub's order."""
    import os

    dirs = []
    if os.environ.get("HF_HUB_CACHE"):
        dirs.append(Path(os.environ["HF_HUB_CACHE"]).expanduser())
    if os.environ.get("HF_HOME"):
        dirs.append(Path(os.environ["HF_HOME"]).expanduser() / "hub")
    from huggingface_hub import constants

    dirs.append(Path(constants.HF_HUB_CACHE).expanduser())
    dirs.append(Path("~/.cache/huggingface/hub").expanduser())
    return list(dict.fromkeys(dirs))


def hub_cache_dir() -> Path:
    return hub_cache_dirs()[0]


def split_revision(location: str) -> tuple[str, str | None]:
    """`org/name@rev` -> ("org/name", "rev"); a path or a bare repo id -> (location, None)."""
    text = str(location)
    if "@" in text and _REPO_ID.match(text.split("@", 1)[0]) and not Path(text).exists():
        repo, rev = text.split("@", 1)
        return repo, rev or None
    return text, None


def looks_like_repo_id(text: str) -> bool:
    return bool(_REPO_ID.match(split_revision(text)[0])) and not Path(text).expanduser().exists()


def resolve_checkpoint(location: str | Path, revision: str | None = None) -> Path:
    """The directory holding config.json: `location` itself, or a cached snapshot of the repo id
    (`revision`: a branch, tag or commit; default main). Never downloads."""
    text, at_rev = split_revision(str(location))
    revision = revision or at_rev
    root = Path(text).expanduser()
    looked = [str(root.resolve() / "config.json")]
    if (root / "config.json").is_file():
        return root
    if _REPO_ID.match(text) and not root.exists():
        from huggingface_hub import try_to_load_from_cache

        for cache in hub_cache_dirs():
            found = try_to_load_from_cache(text, "config.json", cache_dir=cache, revision=revision)
            if isinstance(found, str) and Path(found).is_file():
                return Path(found).parent
            looked.append(f"{cache / ('models--' + text.replace('/', '--'))}/snapshots/"
                          f"<{revision or 'refs/main'}>/config.json")
        where = "HF_HUB_CACHE, HF_HOME/hub, ~/.cache/huggingface/hub"
        raise ConfigError(f"checkpoint {text!r}{f' revision {revision!r}' if revision else ''} not found offline: "
                          f"looked at {'; '.join(looked)} ({where}); nothing is downloaded (fetch it with "
                          "`hf download` on a machine with network, or give a local directory)")
    raise ConfigError(f"checkpoint {text!r} not found: looked for {looked[0]}; nothing is downloaded "
                      "(write one with save_pretrained, or name a repo id that is in the local Hugging Face cache)")


def read_config(root: Path) -> dict:
    try:
        return json.loads((root / "config.json").read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{root / 'config.json'}: not valid JSON ({exc})") from None


def _check_remote_code(root: Path, raw: dict, location, trust_remote_code: bool) -> dict:
    auto_map = raw.get("auto_map") or {}
    if auto_map and not trust_remote_code:
        raise ConfigError(f"checkpoint {str(location)!r} ({root}) needs remote code (config.json auto_map: "
                          f"{', '.join(sorted(auto_map))}); set trust_remote_code: true on the decoder in the suite "
                          "(Python: trust_remote_code=True) to run its Python files")
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
                    device: str = "cpu", text_only: bool = True, revision: str | None = None,
                    device_map: str | None = None):
    """A model from a local directory or the local HF cache, in eval mode, on `device` in `dtype`.

    With accelerate installed, weights are placed on `device` as they are read (transformers' device_map
    needs it; `device_map: auto` spreads a model over every visible GPU); without, they are read into CPU
    memory and then moved. transformers 5 always builds the model on the meta device and reads each tensor
    once (its from_pretrained drops `low_cpu_mem_usage` as always on), so CPU memory holds one copy at most.
    `text_only` drops DiffusionGemma's vision tower, which the text path never calls."""
    import torch
    from transformers import AutoConfig

    root = resolve_checkpoint(location, revision)
    raw = read_config(root)
    auto_map = _check_remote_code(root, raw, location, trust_remote_code)
    kwargs = dict(local_files_only=True, trust_remote_code=trust_remote_code)
    config = AutoConfig.from_pretrained(root, **kwargs)
    cls = _model_class(raw, auto_map)
    placed = False
    if device_map and device_map != "none":
        if not _has_accelerate():
            raise ConfigError(f"device_map: {device_map}: needs accelerate (pip install 'dgbench[gpu]')")
        kwargs["device_map"] = device_map if device_map != "device" else {"": device}
        placed = True
    elif device != "cpu" and _has_accelerate():
        kwargs["device_map"] = {"": device}       # weights go to the device as they are read
        placed = True
    # The MTP drafters cannot be built by transformers 5.23 as shipped (see all_layers_kv_shared).
    drafter = raw.get("model_type") in ("gemma4_assistant", "gemma4_unified_assistant")
    with all_layers_kv_shared() if drafter else contextlib.nullcontext():
        # use_kernels=False: transformers 5.25 turned hub kernels on by default (5.24: off), which swaps layers
        # for downloaded kernels (different numerics, a network fetch) and refuses to load without the
        # `kernels` package; dgbench measures the modeling code as transformers ships it, offline.
        model = cls.from_pretrained(root, config=config, dtype=getattr(torch, dtype), use_kernels=False, **kwargs)
    if not placed:
        model = model.to(device)
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
    return load_pretrained(location, trust_remote_code=trust_remote_code or spec.trust_remote_code, dtype=dtype,
                           device=device, revision=spec.revision, device_map=spec.device_map)
