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

OBJECTIVES = ("diffusion", "autoregressive")


def build_model(seed: int):
    """A freshly initialised backbone (transformers' own init), the same weights for the same seed."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(**TEXT_CONFIG)
    config.architectures = ["LlamaForCausalLM"]
    return LlamaForCausalLM(config)
