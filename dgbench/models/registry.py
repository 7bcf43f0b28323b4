"""Named model specs. Importing this module imports no torch: the CLI lists and validates cheaply.

A spec is a real transformers architecture plus the numbers of its text configuration. The small
specs here are what CI and the embedded suites run with random ("synthetic") weights; both members
of a pair share every width, so the diffusion and autoregressive rows differ only in architecture
and decoding.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str            # "diffusiongemma" | "gemma4"
    paradigm: str          # "diffusion" | "autoregressive"
    architecture: str      # the transformers class that is built
    text_config: dict      # kwargs of the transformers text config
    canvas_length: int | None = None   # diffusion only: tokens denoised together
    weights: str = "synthetic"         # "synthetic" (random init) or a local path
    source: str = ""
    description: str = ""
    special_tokens: dict = field(default_factory=lambda: {"pad": 0, "eos": 1, "bos": 2})


# Shared widths of the small pairs. MoE settings are required: transformers 5.23's DiffusionGemma
# crashed with a dense text config (../shared/FACTS.md), and Gemma 4 26B-A4B is itself MoE.
def _small_text(hidden: int, layers: int, vocab: int, heads: int, experts: int, expert_ffn: int) -> dict:
    head_dim = hidden // heads
    return dict(
        vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=max(1, heads // 2), head_dim=head_dim,
        global_head_dim=head_dim, sliding_window=128, max_position_embeddings=8192,
        num_experts=experts, top_k_experts=2, moe_intermediate_size=expert_ffn,
        # Every 6th layer is global in Gemma 4 (5 sliding : 1 full); a short stack keeps the last one
        # full, which transformers enforces.
    )


_TINY = _small_text(hidden=64, layers=2, vocab=512, heads=2, experts=4, expert_ffn=32)
_SMALL = _small_text(hidden=256, layers=4, vocab=4096, heads=4, experts=8, expert_ffn=128)

_SOURCE_SMALL = ("transformers 5.23 DiffusionGemmaForBlockDiffusion / Gemma4ForCausalLM with reduced widths "
                 "chosen by dgbench; random weights")

SPECS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in SPECS:
        raise ValueError(f"model spec {spec.name!r} registered twice")
    SPECS[spec.name] = spec
    return spec


register(ModelSpec("diffusiongemma-tiny", "diffusiongemma", "diffusion", "DiffusionGemmaForBlockDiffusion",
                   _TINY, canvas_length=16, source=_SOURCE_SMALL,
                   description="smoke-test size: 2 layers, d=64, vocab 512, 4 experts"))
register(ModelSpec("gemma4-tiny", "gemma4", "autoregressive", "Gemma4ForCausalLM", _TINY, source=_SOURCE_SMALL,
                   description="AR twin of diffusiongemma-tiny (same widths)"))
register(ModelSpec("diffusiongemma-small", "diffusiongemma", "diffusion", "DiffusionGemmaForBlockDiffusion",
                   _SMALL, canvas_length=64, source=_SOURCE_SMALL,
                   description="CPU latency size: 4 layers, d=256, vocab 4096, 8 experts top-2"))
register(ModelSpec("gemma4-small", "gemma4", "autoregressive", "Gemma4ForCausalLM", _SMALL, source=_SOURCE_SMALL,
                   description="AR twin of diffusiongemma-small (same widths)"))


# A bidirectional Llama run as a masked-diffusion denoiser (LLaDA's recipe on a small scale): the same
# transformers architecture a causal LM uses, called with a full 4D attention mask. Special ids 0..3 so
# synthetic prompts (drawn above the special ids) never contain the mask token. initializer_range 0.3:
# at the default 0.02 a random model predicts about two distinct tokens and every sampler agrees.
_MASKED_TINY = dict(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                    initializer_range=0.3, tie_word_embeddings=False)
register(ModelSpec("llama-masked-tiny", "llama", "diffusion", "LlamaForCausalLM", _MASKED_TINY,
                   source="transformers 5.23 LlamaForCausalLM run bidirectionally (4D mask); widths chosen by "
                          "dgbench; random weights",
                   description="masked-diffusion denoiser (LLaDA-style) for sampler comparisons: 2 layers, d=64",
                   special_tokens={"pad": 0, "eos": 1, "bos": 2, "mask": 3}))


def names() -> list[str]:
    return sorted(SPECS)


def get(name: str) -> ModelSpec:
    from dgbench.errors import ConfigError
    from dgbench.validation import did_you_mean

    if name not in SPECS:
        raise ConfigError(f"unknown model {name!r}; {did_you_mean(name, names())} (see `dgbench list models`)")
    return SPECS[name]
