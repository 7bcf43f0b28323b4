"""Build a registered spec with random weights on a chosen device and dtype."""

from __future__ import annotations

import logging

from dgbench.models.registry import ModelSpec

# Gemma 4's vision tower is mandatory in DiffusionGemma's encoder: with vision_config=None transformers
# still builds the default one (~167M parameters, ../shared/FACTS.md). We build a minimal one and then
# drop it, since the text path never calls it (only get_image_features does).
_TINY_VISION = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                    num_key_value_heads=2, head_dim=8)


def _quiet_transformers() -> None:
    # "Last layer must use full_attention... Forcing" is expected for short stacks; keep the console clean.
    logging.getLogger("transformers").setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover - transformers always has it
        pass


def build_config(spec: ModelSpec):
    _quiet_transformers()
    if spec.architecture == "DiffusionGemmaForBlockDiffusion":
        from transformers import DiffusionGemmaConfig, DiffusionGemmaTextConfig, Gemma4VisionConfig

        tokens = spec.special_tokens
        text = DiffusionGemmaTextConfig(**spec.text_config, pad_token_id=tokens["pad"], eos_token_id=tokens["eos"],
                                        bos_token_id=tokens["bos"])
        return DiffusionGemmaConfig(text_config=text, vision_config=Gemma4VisionConfig(**_TINY_VISION),
                                    canvas_length=spec.canvas_length)
    if spec.architecture == "Gemma4ForCausalLM":
        from transformers import Gemma4TextConfig

        tokens = spec.special_tokens
        return Gemma4TextConfig(**spec.text_config, enable_moe_block=True, hidden_size_per_layer_input=0,
                                vocab_size_per_layer_input=spec.text_config["vocab_size"],
                                pad_token_id=tokens["pad"], eos_token_id=tokens["eos"], bos_token_id=tokens["bos"])
    if spec.architecture == "LlamaForCausalLM":
        from transformers import LlamaConfig

        tokens = spec.special_tokens
        return LlamaConfig(**spec.text_config, pad_token_id=tokens["pad"], eos_token_id=tokens["eos"],
                           bos_token_id=tokens["bos"])
    raise ValueError(f"{spec.name}: no builder for architecture {spec.architecture!r}")


def build_synthetic(spec: ModelSpec, device: str = "cpu", dtype: str = "float32", seed: int = 0):
    """Random-weight model of the spec, in eval mode, on `device` in `dtype`."""
    import torch

    config = build_config(spec)
    torch.manual_seed(seed)
    torch_dtype = getattr(torch, dtype)
    with torch.device(device):
        if spec.architecture == "DiffusionGemmaForBlockDiffusion":
            from transformers import DiffusionGemmaForBlockDiffusion

            model = DiffusionGemmaForBlockDiffusion(config)
            model.model.encoder.vision_tower = None   # text only: see _TINY_VISION
            model.model.encoder.embed_vision = None
        elif spec.architecture == "LlamaForCausalLM":
            from transformers import LlamaForCausalLM

            model = LlamaForCausalLM(config)
        else:
            from transformers import Gemma4ForCausalLM

            model = Gemma4ForCausalLM(config)
    return model.to(dtype=torch_dtype).eval()


def count_parameters(model) -> int:
    # Tied weights (DiffusionGemma shares encoder and decoder layers) are counted once.
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
