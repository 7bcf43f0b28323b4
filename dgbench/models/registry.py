"""Named model specs. Importing this module imports no torch: the CLI lists and validates cheaply.

A spec is a real transformers architecture plus the numbers of its text configuration. The small
specs here are what CI and the embedded suites run with random ("synthetic") weights; both members
of a pair share every width, so the diffusion and autoregressive rows differ only in architecture
and decoding. The full-size specs carry the published geometry of the models the benchmark is about;
every number's origin is written in the spec's `source`, uncertain ones said to be uncertain.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str            # "diffusiongemma" | "gemma4" | "llama" | "llada" | "dream"
    paradigm: str          # "diffusion" | "autoregressive"
    architecture: str      # the transformers class that is built
    text_config: dict      # kwargs of the transformers text config
    canvas_length: int | None = None   # diffusion only: tokens denoised together
    weights: str = "synthetic"         # "synthetic" (random init) or a local path
    source: str = ""
    description: str = ""
    special_tokens: dict = field(default_factory=lambda: {"pad": 0, "eos": 1, "bos": 2})
    # What the model card advertises (parameters, not bytes); None where it advertises nothing.
    total_params_advertised: float | None = None
    active_params_advertised: float | None = None
    checkpoint: str | None = None      # local directory or hub repo id that `load_model` reads offline
    drafter: str | None = None         # spec name of the speculative-decoding drafter for this target
    extra_config: dict = field(default_factory=dict)  # kwargs of the outer config (e.g. the assistant's)
    # Checkpoint loading (set on the specs a suite's decoder derives, dgbench/models/checkpoints.py).
    revision: str | None = None        # branch, tag or commit of a repo id in the local cache
    trust_remote_code: bool = False    # run the checkpoint's own Python files (auto_map)
    device_map: str | None = None      # accelerate placement ("auto": every visible GPU)
    tokenizer: str | None = None       # directory of the checkpoint's tokenizer; None: the byte codec
    chat: bool | None = None           # apply the tokenizer's chat template (None: when it has one)


# Shared widths of the small pairs. MoE settings are required: transformers 5.23's DiffusionGemma
# crashed with a dense text config (measured with transformers 5.23), and Gemma 4 26B-A4B is itself MoE.
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
# A draft model for speculative decoding of gemma4-small: same vocabulary (required to verify its tokens),
# one layer at half the width. transformers 5.23 cannot build Gemma 4's own drafter (gemma4_assistant)
# standalone at small size with random weights, so the latency suite drafts with a smaller Gemma 4.
register(ModelSpec("gemma4-small-draft", "gemma4", "autoregressive", "Gemma4ForCausalLM",
                   _small_text(hidden=128, layers=1, vocab=4096, heads=2, experts=4, expert_ffn=64),
                   source=_SOURCE_SMALL, description="1-layer draft model for gemma4-small (same vocabulary)"))


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


# The reference pair that `dgbench train` produces and the package ships (dgbench/_data/models/<name>/,
# each with its model card): one LlamaForCausalLM backbone trained with a masked-diffusion or a
# next-token objective on the same data, steps and seed. Real weights, loaded offline from the package.
def _embedded(name: str) -> str:
    from pathlib import Path

    return str(Path(__file__).resolve().parent.parent / "_data" / "models" / name)


def _register_trained(name: str, family: str, paradigm: str, architecture: str, text: dict, source: str,
                      description: str, canvas_length: int | None = None) -> None:
    """One model that `dgbench train` produced and the package ships (weights and card under _data/models)."""
    from dgbench.training.backbone import SPECIAL_TOKENS

    register(ModelSpec(name, family, paradigm, architecture, dict(text), canvas_length=canvas_length,
                       weights="embedded", checkpoint=_embedded(name), source=source, description=description,
                       special_tokens=dict(SPECIAL_TOKENS)))


def _register_llama_pair(diffusion: str, ar: str, source: str, diffusion_note: str, ar_note: str) -> None:
    """A masked-diffusion Llama and its causal twin (same backbone, data, steps and seed)."""
    from dgbench.training.backbone import TEXT_CONFIG

    _register_trained(diffusion, "llama", "diffusion", "LlamaForCausalLM", TEXT_CONFIG, source, diffusion_note)
    _register_trained(ar, "llama", "autoregressive", "LlamaForCausalLM", TEXT_CONFIG, source, ar_note)


def _register_reference_pairs() -> None:
    from dgbench.training.backbone import GEMMA_CANVAS_LENGTH, GEMMA_TEXT_CONFIG

    source = ("trained by dgbench itself (`dgbench train`, see the model card README.md in the checkpoint folder): "
              "transformers 5.23 LlamaForCausalLM, hidden 128, 4 layers, byte-level vocabulary 260; both members "
              "share backbone, data (Sudoku 4x4 at 4-11 givens, pyfill, computable MC), steps and seed")
    _register_llama_pair("ref-diffusion", "ref-ar", source,
                         "reference masked-diffusion model (bidirectional, LLaDA-style loss); decode with dgbench-masked",
                         "reference autoregressive twin of ref-diffusion (causal, next-token loss)")
    # The MC pair: the same backbone trained on computable MC only, answers written with their working first
    # (the `mccwork` task: a scratchpad, then "Answer: X"); decode with gen_length 40.
    source = ("trained by dgbench itself (`dgbench train --tasks mccwork --storage-dtype bfloat16`; model card README.md "
              "in the checkpoint folder): transformers LlamaForCausalLM, hidden 128, 4 layers, byte-level vocabulary "
              "260; both members share backbone, data (computable MC with worked answers), steps and seed; stored in "
              "bfloat16, loaded in float32")
    _register_llama_pair("ref-mcc-diffusion", "ref-mcc-ar", source,
                         "masked-diffusion MC specialist (worked answers, 40 tokens); decode with dgbench-masked",
                         "autoregressive twin of ref-mcc-diffusion (worked answers, 40 tokens)")
    # The DiffusionGemma pair: the architecture the benchmark is about, trained with its sampler's objective.
    source = ("trained by dgbench itself (`dgbench train --objective uniform-diffusion` / `--objective autoregressive "
              "--backbone gemma4`; model card README.md in the checkpoint folder): transformers "
              "DiffusionGemmaForBlockDiffusion / Gemma4ForCausalLM, hidden 128, 4 layers, 4 experts top-2, byte-level "
              "vocabulary 260; both share widths, data (Sudoku 4x4 at 4-11 givens, pyfill, computable MC), steps and "
              "seed; stored in bfloat16, loaded in float32")
    _register_trained("ref-diffusiongemma", "diffusiongemma", "diffusion", "DiffusionGemmaForBlockDiffusion",
                      GEMMA_TEXT_CONFIG, source, "reference DiffusionGemma (uniform-noise diffusion, self-conditioning); "
                      "decode with dgbench-diffusion or hf-diffusion", canvas_length=GEMMA_CANVAS_LENGTH)
    _register_trained("ref-gemma4", "gemma4", "autoregressive", "Gemma4ForCausalLM", GEMMA_TEXT_CONFIG, source,
                      "reference Gemma 4 causal twin of ref-diffusiongemma (next-token loss)")


_register_reference_pairs()


# ---- full-size specs: published geometry ----
# Gemma's special ids (pad 0, eos 1, bos 2) are the Gemma4TextConfig / DiffusionGemmaTextConfig defaults.

# Gemma 4 26B-A4B text decoder. Sliding layers: 8 KV heads x 256; global layers: 2 KV heads x 512 with
# K = V (no v_proj). Rope settings, the 5:1 layer pattern and tied embeddings are the transformers
# defaults, which are the published ones (the checkpoints' config.json).
_G4_26B = dict(vocab_size=262_144, hidden_size=2816, intermediate_size=2112, num_hidden_layers=30,
               num_attention_heads=16, num_key_value_heads=8, head_dim=256, global_head_dim=512,
               num_global_key_value_heads=2, sliding_window=1024, max_position_embeddings=262_144,
               num_experts=128, top_k_experts=8, moe_intermediate_size=704)

_SOURCE_26B_GEOMETRY = (
    "geometry (30 layers, hidden 2816, 16 query heads, KV heads 8 sliding / 2 global, head_dim 256 / global 512, "
    "dense MLP 2112 beside 128 experts top-8 of 704, vocab 262,144 tied, window 1024, 5 sliding : 1 full, "
    "262,144 positions): the published text_config of google/gemma-4-26B-A4B-it (config.json in its Hugging Face repository); "
    "the 2 global KV heads also in transformers 5.23's own EP-plan comment ('num_global_key_value_heads=2'); "
    "layer pattern, rope and tied embeddings are transformers 5.23 config defaults")

register(ModelSpec(
    "diffusiongemma-26b-a4b", "diffusiongemma", "diffusion", "DiffusionGemmaForBlockDiffusion", _G4_26B,
    canvas_length=256, checkpoint="google/diffusiongemma-26B-A4B-it",
    total_params_advertised=25.2e9, active_params_advertised=3.8e9,
    source=(
        "text part of google/diffusiongemma-26B-A4B-it. " + _SOURCE_26B_GEOMETRY + "; canvas 256: "
        "DiffusionGemmaConfig default and the card ('256-token blocks'); encoder and decoder share every layer "
        "weight (transformers _tied_weights_keys), the decoder adds self-conditioning (an MLP of width 2112); "
        "global layers are K=V by construction in DiffusionGemma attention (v_proj on sliding layers only), so a "
        "quoted attention_k_eq_v=false changes nothing in 5.23. Advertised 25.2B total / 3.8B active: model card "
        "table (as quoted by build.nvidia.com and the NVFP4 card). The vision tower (~550M per the Gemma 4 card) is "
        "left out; cross-check: bf16 files 51,647,701,024 B (the repository's safetensors listing) = 25.82B params = this text part + ~0.57B"),
    description="DiffusionGemma 26B-A4B text model: block diffusion, canvas 256, 128 experts top-8"))

register(ModelSpec(
    "gemma4-26b-a4b", "gemma4", "autoregressive", "Gemma4ForCausalLM",
    {**_G4_26B, "attention_k_eq_v": True, "final_logit_softcapping": 30.0},
    checkpoint="google/gemma-4-26B-A4B-it", total_params_advertised=25.2e9, active_params_advertised=3.8e9,
    source=(
        "text decoder of google/gemma-4-26B-A4B-it built as Gemma4ForCausalLM. " + _SOURCE_26B_GEOMETRY +
        "; attention_k_eq_v true and final_logit_softcapping 30: the repository's config.json. Advertised 25.2B total / 3.8B active: "
        "Gemma 4 model card table ('26B' in the name is rounded); the vision tower (~550M) is left out"),
    description="Gemma 4 26B-A4B MoE causal LM: the autoregressive baseline of the same size"))

# Gemma 4 12B ("Unified", encoder-free). transformers 5.23 ships it as gemma4_unified, whose text decoder
# has the same modules as gemma4's (attention, MLP, norms; test_model_specs builds both and compares), so
# the dense Gemma4ForCausalLM stands in and pairs with the gemma4_assistant drafter below.
_G4_12B = dict(vocab_size=262_144, hidden_size=3840, intermediate_size=15_360, num_hidden_layers=48,
               num_attention_heads=16, num_key_value_heads=8, head_dim=256, global_head_dim=512,
               num_global_key_value_heads=1, attention_k_eq_v=True, sliding_window=1024,
               max_position_embeddings=262_144, final_logit_softcapping=30.0)
register(ModelSpec(
    "gemma4-12b", "gemma4", "autoregressive", "Gemma4ForCausalLM", _G4_12B,
    checkpoint="google/gemma-4-12B-it", total_params_advertised=11.95e9, active_params_advertised=11.95e9,
    drafter="gemma4-12b-assistant",
    source=(
        "dense target for the speculative comparison: text decoder of google/gemma-4-12B-it (transformers model "
        "type gemma4_unified; same decoder modules as gemma4). 48 layers (40 sliding + 8 global), hidden 3840, "
        "16 query heads, 8 KV heads sliding / 1 global, head_dim 256 / global 512, MLP 15,360, vocab 262,144, "
        "window 1024: the model's config.json as tabulated in a public walkthrough (iamulya.one, 'Inside LLM "
        "inference') and in third-party summaries of the card (48 layers, 3840, 1024 window); "
        "attention_k_eq_v=true is an assumption (transformers applies the 1 global KV head only with it; without "
        "it the count grows by 15.7M); softcapping 30 assumed as for the 26B. Advertised 11.95B: model card as "
        "quoted by labindex (it includes ~35M of vision/audio embedders left out here)"),
    description="Gemma 4 12B dense causal LM (speculative-decoding target; drafter gemma4-12b-assistant)"))

# The MTP drafter reads the target's KV (every layer is KV-shared), so its KV heads and head dims must be
# the target's; everything else about its geometry is unpublished as far as we could read.
_G4_12B_DRAFT = dict(vocab_size=262_144, hidden_size=1024, intermediate_size=8192, num_hidden_layers=4,
                     num_attention_heads=16, num_key_value_heads=8, head_dim=256, global_head_dim=512,
                     num_global_key_value_heads=1, attention_k_eq_v=True, sliding_window=1024,
                     max_position_embeddings=262_144, final_logit_softcapping=30.0)
register(ModelSpec(
    "gemma4-12b-assistant", "gemma4", "autoregressive", "Gemma4AssistantForCausalLM", _G4_12B_DRAFT,
    checkpoint="google/gemma-4-12B-it-assistant", total_params_advertised=423e6, active_params_advertised=423e6,
    extra_config={"backbone_hidden_size": 3840},
    source=(
        "MTP drafter of gemma4-12b, transformers gemma4_assistant architecture (the hub checkpoint is "
        "gemma4_unified_assistant, same modules). Forced by the architecture: backbone_hidden_size 3840 (the "
        "target's hidden), KV heads 8 / 1 and head_dim 256 / 512 (it attends over the target's KV), vocab 262,144. "
        "NOT published where we could read: hidden 1024, 4 layers (3 sliding + 1 global), 16 heads, MLP 8192 are "
        "dgbench's guess, fitted so the total matches the 423M the hub listing shows for "
        "google/gemma-4-12B-it-assistant"),
    description="Gemma 4 12B MTP drafter (geometry guessed to match the advertised 423M)"))

# LLaDA 8B (GSAI-ML/LLaDA-8B-Base / -Instruct): a LLaMA-like bidirectional transformer in its own remote
# code (LLaDAModelLM); offline we build the same tensors as LlamaForCausalLM and run it with a full mask.
register(ModelSpec(
    "llada-8b", "llada", "diffusion", "LlamaForCausalLM",
    dict(vocab_size=126_464, hidden_size=4096, intermediate_size=12_288, num_hidden_layers=32,
         num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096, rms_norm_eps=1e-5,
         rope_parameters={"rope_type": "default", "rope_theta": 500_000.0}, tie_word_embeddings=False),
    checkpoint="GSAI-ML/LLaDA-8B-Instruct", total_params_advertised=8.02e9, active_params_advertised=8.02e9,
    special_tokens={"pad": 126_081, "eos": 126_081, "bos": 126_080, "mask": 126_336},
    source=(
        "LLaDA-8B config.json (d_model 4096, n_layers 32, n_heads = n_kv_heads 32, mlp_hidden_size 12,288 used as "
        "the SwiGLU width of separate gate and up projections, vocab/embedding_size 126,464, weight_tying false, "
        "no biases, RMSNorm eps 1e-5) and the LLaDA paper's Table (8.02B total, 6.98B non-embedding; the formula "
        "here gives both); special ids bos 126080, eos = pad 126081, mask 126336 from the config/tokenizer as used "
        "in public LLaDA code. From memory, not re-read here: rope_theta 500,000 and 4096 max positions (neither "
        "changes the parameter count). Built as LlamaForCausalLM: same tensor shapes, no remote code"),
    description="LLaDA 8B masked-diffusion LM (LLaMA geometry, no KV cache in the original)"))

# Dream-v0 7B (Dream-org/Dream-v0-Instruct-7B): initialised from Qwen2.5-7B and keeps its geometry and
# its shifted logits (masked_lm.EncoderDenoiser handles the shift for the remote-code model).
register(ModelSpec(
    "dream-7b", "dream", "diffusion", "Qwen2ForCausalLM",
    dict(vocab_size=152_064, hidden_size=3584, intermediate_size=18_944, num_hidden_layers=28,
         num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=131_072, rms_norm_eps=1e-6,
         rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0}, tie_word_embeddings=False),
    checkpoint="Dream-org/Dream-v0-Instruct-7B", total_params_advertised=7.6e9, active_params_advertised=7.6e9,
    special_tokens={"pad": 151_643, "eos": 151_643, "bos": 151_643, "mask": 151_666},
    source=(
        "Qwen2.5-7B geometry (hidden 3584, 28 layers, 28 query / 4 KV heads, MLP 18,944, vocab 152,064, q/k/v "
        "biases, untied embeddings, rope_theta 1e6): Qwen2.5 technical report / Qwen2.5-7B config.json, which "
        "Dream-v0 keeps (Dream paper: initialised from Qwen2.5 7B); advertised 7.6B total (6.5B non-embedding) is "
        "Qwen2.5-7B's card. Special ids from memory of Dream's config.json, unverified offline: mask 151666, "
        "eos = pad = bos 151643. Built as Qwen2ForCausalLM: same tensor shapes, no remote code"),
    description="Dream-v0 7B masked-diffusion LM (Qwen2.5-7B geometry)"))


# Specs a suite's decoders derive from checkpoints (a directory, a cached repo id, a spec plus a
# checkpoint): keyed by the point's model name, re-derived whenever a suite is loaded.
DERIVED: dict[str, ModelSpec] = {}


def names() -> list[str]:
    return sorted(SPECS)


def get(name: str) -> ModelSpec:
    from dgbench.errors import ConfigError
    from dgbench.validation import did_you_mean

    if name in DERIVED:
        return DERIVED[name]
    if name not in SPECS:
        raise ConfigError(f"unknown model {name!r}; {did_you_mean(name, names())} (see `dgbench list models`)")
    return SPECS[name]
