"""Build a registered spec with random weights on a chosen device and dtype.

Full-size specs do not fit in this machine's memory (26B parameters are 104 GB in float32), so a model's
parameters are first built on the meta device (shapes only, no storage), and only then given storage on
the target device at the target dtype and initialised in place: the weights never exist twice, nor on
the CPU first. `build_on_meta` stops at the shapes, which is all parameter accounting needs.
"""

from __future__ import annotations

import contextlib
import logging

from dgbench.models.registry import ModelSpec

# Gemma 4's vision tower is mandatory in DiffusionGemma's encoder: with vision_config=None transformers
# still builds the default one (~167M parameters, measured with transformers 5.23). We build a minimal one and then
# drop it, since the text path never calls it (only get_image_features does).
_TINY_VISION = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                    num_key_value_heads=2, head_dim=8)

DTYPES = ("float32", "bfloat16", "float16")


def _quiet_transformers() -> None:
    # "Last layer must use full_attention... Forcing" is expected for short stacks; keep the console clean.
    logging.getLogger("transformers").setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover - transformers always has it
        pass


def _text_kwargs(spec: ModelSpec, num_layers: int | None) -> dict:
    """The spec's text config, optionally cut to `num_layers` (same widths, same layer-type pattern)."""
    text = dict(spec.text_config)
    if num_layers is not None:
        text["num_hidden_layers"] = num_layers
        if "layer_types" in text:
            text["layer_types"] = list(text["layer_types"][:num_layers])
    return text


def _gemma4_text_config(spec: ModelSpec, text: dict, **fixed):
    from transformers import Gemma4TextConfig

    tokens = spec.special_tokens
    # No per-layer embeddings (PLE: only E2B/E4B have them); MoE exactly when the spec has experts.
    defaults = dict(enable_moe_block=bool(text.get("num_experts")), hidden_size_per_layer_input=0,
                    vocab_size_per_layer_input=text["vocab_size"], pad_token_id=tokens["pad"],
                    eos_token_id=tokens["eos"], bos_token_id=tokens["bos"])
    return Gemma4TextConfig(**{**defaults, **fixed, **text})


def build_config(spec: ModelSpec, num_layers: int | None = None):
    """The transformers config of the spec (`num_layers` overrides the depth, nothing else)."""
    _quiet_transformers()
    text = _text_kwargs(spec, num_layers)
    tokens = spec.special_tokens
    ids = dict(pad_token_id=tokens["pad"], eos_token_id=tokens["eos"], bos_token_id=tokens["bos"])
    if spec.architecture == "DiffusionGemmaForBlockDiffusion":
        from transformers import DiffusionGemmaConfig, DiffusionGemmaTextConfig, Gemma4VisionConfig

        text_config = DiffusionGemmaTextConfig(**{**ids, **text})
        return DiffusionGemmaConfig(text_config=text_config, vision_config=Gemma4VisionConfig(**_TINY_VISION),
                                    canvas_length=spec.canvas_length)
    if spec.architecture == "Gemma4ForCausalLM":
        return _gemma4_text_config(spec, text)
    if spec.architecture == "Gemma4AssistantForCausalLM":
        from transformers import Gemma4AssistantConfig

        # The drafter has no PLE table and no MoE (Gemma4AssistantConfig.validate_architecture).
        text_config = _gemma4_text_config(spec, text, enable_moe_block=False, vocab_size_per_layer_input=0)
        return Gemma4AssistantConfig(text_config=text_config, **spec.extra_config)
    if spec.architecture == "LlamaForCausalLM":
        from transformers import LlamaConfig

        return LlamaConfig(**{**ids, **text})
    if spec.architecture == "Qwen2ForCausalLM":
        from transformers import Qwen2Config

        return Qwen2Config(**{**ids, **text})
    raise ValueError(f"{spec.name}: no builder for architecture {spec.architecture!r}")


@contextlib.contextmanager
def all_layers_kv_shared():
    """transformers 5.23's Gemma 4 text configs raise in `kv_sharing_modes` when every layer is KV-shared
    ("the set of layer types producing a cache is different..."), which is exactly the assistant's case:
    it owns no K/V projections and reads the target's. While an assistant is built (or loaded), answer
    "reuse" for every layer of such a config; other configs are untouched."""
    from transformers import Gemma4TextConfig, Gemma4UnifiedTextConfig

    originals = {cls: cls.kv_sharing_modes for cls in (Gemma4TextConfig, Gemma4UnifiedTextConfig)}

    def patched(original):
        def modes(self):
            if self.num_kv_shared_layers and self.num_kv_shared_layers == self.num_hidden_layers:
                return ["reuse"] * self.num_hidden_layers
            return original.fget(self)
        return property(modes)

    for cls, original in originals.items():
        cls.kv_sharing_modes = patched(original)
    try:
        yield
    finally:
        for cls, original in originals.items():
            cls.kv_sharing_modes = original


def _instantiate(spec: ModelSpec, config):
    import transformers

    if spec.architecture == "Gemma4AssistantForCausalLM":
        with all_layers_kv_shared():
            return transformers.Gemma4AssistantForCausalLM(config)
    model = getattr(transformers, spec.architecture)(config)
    if spec.architecture == "DiffusionGemmaForBlockDiffusion":
        model.model.encoder.vision_tower = None   # text only: see _TINY_VISION
        model.model.encoder.embed_vision = None
    return model


def build_on_meta(spec: ModelSpec, num_layers: int | None = None):
    """The spec's module on the meta device: every parameter's shape, no storage (for counting). With
    `num_layers`, a shorter stack of the same widths."""
    import torch

    with torch.device("meta"):
        return _instantiate(spec, build_config(spec, num_layers))


@contextlib.contextmanager
def _parameters_on_meta():
    """Parameters go to the meta device as they are registered; buffers stay real. Constructors fill some
    buffers (a layer's `layer_scalar` of ones) that no `_init_weights` covers, so building everything on
    meta would lose them; a parameter's storage is `torch.empty` (never touched) and is dropped at once."""
    import torch

    register = torch.nn.Module.register_parameter

    def register_on_meta(module, name, param):
        if param is not None and param.device.type != "meta":
            param = type(param)(param.to("meta"), requires_grad=param.requires_grad)
        register(module, name, param)

    torch.nn.Module.register_parameter = register_on_meta
    try:
        yield
    finally:
        torch.nn.Module.register_parameter = register


def _materialize(model, device: str, dtype) -> None:
    """Give every meta parameter uninitialised storage on `device` in `dtype`; a tied parameter (one object
    under several names) gets one tensor. Floating buffers are cast as `model.to(dtype)` would."""
    import torch

    fresh: dict[int, torch.nn.Parameter] = {}
    for module in model.modules():
        for name, param in module._parameters.items():
            if param is None:
                continue
            if id(param) not in fresh:
                data = torch.empty(param.shape, dtype=dtype, device=device)
                fresh[id(param)] = torch.nn.Parameter(data, requires_grad=param.requires_grad)
            module._parameters[name] = fresh[id(param)]
        for name, buf in module._buffers.items():
            if buf is not None:
                module._buffers[name] = buf.to(device=device, dtype=dtype if buf.is_floating_point() else None)
        # transformers skips modules it marked as initialised (it ran over the meta skeleton already)
        module.__dict__.pop("_is_hf_initialized", None)


def build_synthetic(spec: ModelSpec, device: str = "cpu", dtype: str = "float32", seed: int = 0,
                    num_layers: int | None = None):
    """Random-weight model of the spec, in eval mode, on `device` in `dtype`.

    Parameters are built on the meta device, then given storage on `device` at `dtype` and initialised in
    place by transformers' own `_init_weights`, so peak memory is the model at its final dtype, on the
    target device only: a full-size model never passes through the CPU. Same seed, same device: same weights.
    """
    import torch

    if dtype not in DTYPES:
        from dgbench.errors import ConfigError
        from dgbench.validation import did_you_mean

        raise ConfigError(f"unknown dtype {dtype!r} for synthetic weights; {did_you_mean(dtype, list(DTYPES))}")
    config = build_config(spec, num_layers)
    with _parameters_on_meta():
        model = _instantiate(spec, config)
    _materialize(model, device, getattr(torch, dtype))
    torch.manual_seed(seed)
    with torch.device(device):               # init-time temporaries (rotary tables) on the device too
        model.init_weights()                 # parameters, covered buffers, and the ties, re-made
    return model.eval()


def count_parameters(model) -> int:
    # Tied weights (DiffusionGemma shares encoder and decoder layers) are counted once.
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
