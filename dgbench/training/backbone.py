"""The shared backbone of the reference pair: one LlamaForCausalLM configuration for both objectives.

Nothing here imports torch, so the model registry can list the pair cheaply. The vocabulary is the
byte-level codec the tasks already use (dgbench.tasks.text): ids 0..3 are pad, EOS, BOS and mask, byte b
is id b + 4. Both members carry the mask id (the AR model never sees it) so their vocabularies, and so
their parameter counts, are identical.
"""

from __future__ import annotations

SPECIAL_TOKENS = {"pad": 0, "eos": 1, "bos": 2, "mask": 3}
BYTE_OFFSET = max(SPECIAL_TOKENS.values()) + 1
VOCAB_SIZE = BYTE_OFFSET + 256

# d=128, 4 layers: the size measured (this repository's training runs) learning 4x4 Sudoku in about a minute of CPU.
# Full multi-head attention (4 heads of 32) and untied embeddings, as llama-masked-tiny, so the only
# difference between the two members is causal vs bidirectional attention and the loss.
TEXT_CONFIG = dict(vocab_size=VOCAB_SIZE, hidden_size=128, intermediate_size=384, num_hidden_layers=4,
                   num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=1024,
                   rms_norm_eps=1e-5, tie_word_embeddings=False, pad_token_id=SPECIAL_TOKENS["pad"],
                   eos_token_id=SPECIAL_TOKENS["eos"], bos_token_id=SPECIAL_TOKENS["bos"])

# The DiffusionGemma pair (training/gemma_pair.py): same widths as the Llama where Gemma has the knob (hidden
# 128, 4 layers, 4 heads of 32); the MoE block as every DiffusionGemma spec has it (transformers'
# DiffusionGemma needs experts), 4 experts top-2. sliding_window 256 covers the longest training prompt
# (pyfill's suffix-first AR layout, ~200 bytes). Canvas 32: a 4x4 grid (19) + EOS, the pyfill gap (16) + newline
# + 15 characters of the code after it, an MC answer.
GEMMA_TEXT_CONFIG = dict(vocab_size=VOCAB_SIZE, hidden_size=128, intermediate_size=256, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=32, global_head_dim=32,
                         sliding_window=256, max_position_embeddings=1024, num_experts=4, top_k_experts=2,
                         moe_intermediate_size=128)
GEMMA_CANVAS_LENGTH = 32

# diffusion: masked (LLaDA) on the Llama; uniform-diffusion: DiffusionGemma's own (training/gemma_pair.py).
OBJECTIVES = ("diffusion", "autoregressive", "uniform-diffusion")
BACKBONES = ("llama", "gemma4")


def build_model(seed: int):
    """A freshly initialised backbone (transformers' own init), the same weights for the same seed."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(**TEXT_CONFIG)
    config.architectures = ["LlamaForCausalLM"]
    return LlamaForCausalLM(config)
