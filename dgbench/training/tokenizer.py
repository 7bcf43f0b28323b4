"""A byte-level tokenizer whose ids are exactly dgbench.tasks.text's codec: byte b -> id b + 4.

Built with `tokenizers` (GPT-2's ByteLevel pre-tokenizer maps every byte to one printable character,
and a BPE model with no merges maps each such character to one id), wrapped as a
PreTrainedTokenizerFast, so `AutoTokenizer.from_pretrained(checkpoint)` reads the shipped checkpoints
offline and encodes a prompt to the same ids the quality harness feeds the models.
"""

from __future__ import annotations

from pathlib import Path

from dgbench.training.backbone import BYTE_OFFSET, SPECIAL_TOKENS

SPECIAL_STRINGS = {"pad": "<pad>", "eos": "</s>", "bos": "<s>", "mask": "<mask>"}


def build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import PreTrainedTokenizerFast

    byte_chars = ByteLevel.alphabet()                 # 256 printable stand-ins, one per byte
    # bytes_to_unicode order: the stand-in of byte b. Re-derived here because alphabet() is unordered.
    stand_in = _bytes_to_unicode()
    assert set(stand_in.values()) == set(byte_chars)
    vocab = {SPECIAL_STRINGS[k]: v for k, v in SPECIAL_TOKENS.items()}
    vocab.update({stand_in[b]: b + BYTE_OFFSET for b in range(256)})
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=None))
    # use_regex=False: no word splitting, so every byte of the text is one token, spaces included.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(list(SPECIAL_STRINGS.values()))
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", bos_token="<s>",
                                   mask_token="<mask>", model_max_length=1024)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table (openai/gpt-2 encoder.py), which ByteLevel uses."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def save_tokenizer(directory: Path) -> None:
    build_tokenizer().save_pretrained(str(directory))
