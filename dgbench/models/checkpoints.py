"""A suite decoder's weights: a spec name, a checkpoint directory, a repo id in the local cache, or a
spec name plus `checkpoint:`. Resolved when the suite is loaded (before anything is measured), offline.

What a checkpoint decides and where it is read (no torch is imported here):
  * the architecture, paradigm and default engine: config.json `architectures` / `auto_map`
    (DiffusionGemmaForBlockDiffusion: block diffusion; ...ForMaskedLM, remote code, or a config that
    declares a mask token: masked diffusion; anything else: autoregressive);
  * the special ids (pad, eos, bos, mask): the tokenizer's own tokens (tokenizer_config.json mapped through
    tokenizer.json), else config.json's *_token_id; no literals;
  * the text codec: the checkpoint's tokenizer when it ships one (dgbench/models/tokenization.py).

A full-size spec whose `checkpoint` is in the local cache loads it (the run header says so); with
`weights: synthetic` it keeps random weights. The derived spec is registered under the name the points
carry (registry.DERIVED), so everything downstream reads it with registry.get.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from dgbench.errors import ConfigError
from dgbench.models import registry
from dgbench.models.registry import ModelSpec

# Engine defaults by what the checkpoint is (every engine is registered in dgbench/backends/).
DEFAULT_ENGINES = {"block-diffusion": "dgbench-diffusion", "masked-diffusion": "dgbench-masked",
                   "autoregressive": "dgbench-autoregressive"}
_OUTER_KEYS = {"architectures", "auto_map", "transformers_version", "dtype", "torch_dtype", "_name_or_path",
               "model_type", "text_config", "vision_config", "audio_config", "id2label", "label2id"}
TOKEN_KEYS = ("pad", "eos", "bos", "mask")


def kind_of(raw: dict, tokens: dict) -> str:
    """block-diffusion | masked-diffusion | autoregressive, from config.json (and the mask token)."""
    architectures = raw.get("architectures") or []
    if "DiffusionGemmaForBlockDiffusion" in architectures or raw.get("model_type") == "diffusion_gemma":
        return "block-diffusion"
    # A mask token in the tokenizer is not enough (Gemma's has one); LLaDA and Dream put mask_token_id in
    # config.json, as a decoder architecture saved for masked diffusion should.
    text = raw.get("text_config") or {}
    if raw.get("auto_map") or any(a.endswith("ForMaskedLM") for a in architectures) \
            or raw.get("mask_token_id", text.get("mask_token_id")) is not None:
        return "masked-diffusion"
    return "autoregressive"


def _first_id(value):
    if isinstance(value, list):
        return int(value[0]) if value else None
    return None if value is None else int(value)


def special_tokens(root: Path, raw: dict) -> dict:
    """pad/eos/bos/mask ids: the tokenizer's tokens first (what the text is encoded with), then config.json."""
    text = raw.get("text_config") or {}
    out: dict[str, int] = {}
    for key in TOKEN_KEYS:
        value = _first_id(raw.get(f"{key}_token_id", text.get(f"{key}_token_id")))
        if value is not None:
            out[key] = value
    tok_file, tok_config = root / "tokenizer.json", root / "tokenizer_config.json"
    if tok_file.is_file() and tok_config.is_file():
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(tok_file))
        config = _json(tok_config)
        for key in TOKEN_KEYS:
            token = config.get(f"{key}_token")
            token = token.get("content") if isinstance(token, dict) else token
            if isinstance(token, str) and tokenizer.token_to_id(token) is not None:
                out[key] = tokenizer.token_to_id(token)
    if "pad" not in out and "eos" in out:
        out["pad"] = out["eos"]      # the usual convention of decoder checkpoints without a pad token
    missing = [k for k in ("pad", "eos") if k not in out]
    if missing:
        raise ConfigError(f"checkpoint {root}: no {' or '.join(missing)} token id (config.json "
                          f"{missing[0]}_token_id or tokenizer_config.json {missing[0]}_token); add one")
    out.setdefault("bos", out["eos"])
    return out


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it as JSON ({exc})") from None


def has_tokenizer(root: Path) -> bool:
    return (root / "tokenizer.json").is_file() or (root / "tokenizer_config.json").is_file()


def spec_from_checkpoint(name: str, root: Path, base: ModelSpec | None = None, **options) -> ModelSpec:
    """The spec of checkpoint `root`: its own geometry and tokens; `base`'s name, source and card if given."""
    from dgbench.models.loading import _check_remote_code, read_config

    raw = read_config(root)
    # Refused here, when the suite loads, not when the point runs: one line naming the flag.
    _check_remote_code(root, raw, name, bool(options.get("trust_remote_code")))
    tokens = special_tokens(root, raw)
    kind = kind_of(raw, tokens)
    architectures = raw.get("architectures") or []
    text = raw.get("text_config") or {k: v for k, v in raw.items() if k not in _OUTER_KEYS}
    text = {k: v for k, v in text.items() if k not in _OUTER_KEYS}
    architecture = architectures[0] if architectures else "AutoModel"
    paradigm = "autoregressive" if kind == "autoregressive" else "diffusion"
    fields = dict(name=name, family=raw.get("model_type", "checkpoint"), paradigm=paradigm,
                  architecture=architecture, text_config=text,
                  canvas_length=raw.get("canvas_length") if kind == "block-diffusion" else None,
                  weights="checkpoint", checkpoint=str(root), special_tokens=tokens,
                  tokenizer=str(root) if has_tokenizer(root) else None,
                  source=f"checkpoint {root} (config.json: {architecture})",
                  description=f"{kind} checkpoint", **options)
    if base is not None:
        fields.update(source=f"{base.source}; weights from checkpoint {root}", description=base.description,
                      family=base.family, total_params_advertised=base.total_params_advertised,
                      active_params_advertised=base.active_params_advertised)
    return ModelSpec(**fields)


def default_engine(spec: ModelSpec) -> str:
    if spec.architecture == "DiffusionGemmaForBlockDiffusion":
        return DEFAULT_ENGINES["block-diffusion"]
    return DEFAULT_ENGINES["masked-diffusion" if spec.paradigm == "diffusion" else "autoregressive"]


def resolve_decoder(dec: dict, where: str, engine_paradigm: str | None = None) -> tuple[ModelSpec, str | None]:
    """(the spec the decoder's points load, a note for the run header or None). `where` prefixes errors;
    `engine_paradigm` is the paradigm of the decoder's explicit engine (the caller looks it up)."""
    from dgbench.models.loading import looks_like_repo_id, resolve_checkpoint
    from dgbench.validation import did_you_mean

    model = dec["model"]
    if model in registry.DERIVED and set(dec) <= {"model", "name", "engine", "knobs", "dtype", "spec"}:
        return registry.DERIVED[model], None        # a derived spec named again (lm-eval's scenario)
    options = {k: dec[k] for k in ("revision", "trust_remote_code", "device_map", "chat") if dec.get(k) is not None}
    weights = dec.get("weights")
    checkpoint = dec.get("checkpoint")
    if model in registry.SPECS:
        base = registry.SPECS[model]
        if weights == "synthetic":
            if base.weights == "synthetic":
                return base, None
            derived = dataclasses.replace(base, name=f"{model}+synthetic", weights="synthetic", checkpoint=None)
            return _register(derived), f"{model}: random weights (weights: synthetic)"
        location = checkpoint or (base.checkpoint if base.weights == "synthetic" else None)
        if location is None:                       # the embedded pair: its own files, the general loader
            return base, None
        try:
            root = resolve_checkpoint(location, options.get("revision"))
        except ConfigError as exc:
            if checkpoint or weights == "checkpoint":
                raise ConfigError(f"{where}: {exc}") from None
            return base, f"{model}: checkpoint {location} is not in the local cache: random weights"
        derived = spec_from_checkpoint(f"{model}+{location}", root, base, **options)
        return _register(derived), f"{model}: weights from checkpoint {location} ({root})"
    if weights == "synthetic":
        raise ConfigError(f"{where}: weights: synthetic needs a spec name from `dgbench list models`, not a "
                          f"checkpoint ({model!r})")
    path = Path(model).expanduser()
    if not (path.exists() or looks_like_repo_id(model) or "/" in model):
        raise ConfigError(f"{where}: unknown value {model!r}; {did_you_mean(model, registry.names())} (a model from "
                          "`dgbench list models`), a checkpoint directory, or a repo id in the local Hugging Face cache")
    try:
        root = resolve_checkpoint(model, options.get("revision"))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    spec = spec_from_checkpoint(model, root, **options)
    if engine_paradigm and engine_paradigm != spec.paradigm:
        spec = dataclasses.replace(spec, paradigm=engine_paradigm)
    return _register(spec), f"{model}: weights from checkpoint {root}"


def _register(spec: ModelSpec) -> ModelSpec:
    registry.DERIVED[spec.name] = spec
    return spec
