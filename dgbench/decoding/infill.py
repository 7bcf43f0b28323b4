"""Fill-in-the-middle prompts for a left-to-right model, on token lists (no torch, no tokenizer I/O).

An AR model writes the middle of  prefix [hole] suffix  only if the prompt puts the suffix before the
point where it starts writing. Three layouts, best first; the one used is returned as `mode` and stored
with every infill result, since scores from different layouts are not comparable:

- "fim-psm": the model was trained with FIM sentinels (Bavarian et al., arXiv 2207.14255, "PSM" order;
  StarCoder, CodeGemma, Qwen-Coder):  <pre> prefix <suf> suffix <mid>  -> the model writes the middle.
- "suffix-first": no sentinels, but a suffix: give it as context, then the prefix to continue
  (suffix [separator] prefix). The model sees the end it must reach, without being trained for it.
- "prefix-only": no suffix (or the caller asked to ignore it): plain continuation of the prefix, the
  baseline that shows what the suffix was worth.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

INFILL_MODES = ("fim-psm", "suffix-first", "prefix-only")

# Sentinel spellings of the FIM-trained families, tried in order (CodeGemma and Qwen2.5-Coder use the
# first, StarCoder the second, Code Llama the third with its SentencePiece word-start mark).
_SENTINEL_SPELLINGS = (
    ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),
    ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),
    ("▁<PRE>", "▁<SUF>", "▁<MID>"),
)


@dataclass(frozen=True)
class FimTokens:
    prefix_id: int
    suffix_id: int
    middle_id: int


@dataclass(frozen=True)
class InfillPrompt:
    ids: list[int]
    mode: str                  # one of INFILL_MODES


def fim_tokens_from_special(special_tokens: Mapping[str, int]) -> FimTokens | None:
    """Sentinels named in a model spec's special tokens (`fim_prefix`, `fim_suffix`, `fim_middle`), if all three are."""
    keys = ("fim_prefix", "fim_suffix", "fim_middle")
    if all(special_tokens.get(k) is not None for k in keys):
        return FimTokens(*(int(special_tokens[k]) for k in keys))
    return None


def fim_tokens_from_tokenizer(tokenizer) -> FimTokens | None:
    """Sentinels from a transformers tokenizer's vocabulary, if it has one of the known spellings."""
    vocab = tokenizer.get_vocab()
    for spelling in _SENTINEL_SPELLINGS:
        if all(s in vocab for s in spelling):
            return FimTokens(*(vocab[s] for s in spelling))
    return None


def build_infill_prompt(prefix: Sequence[int], suffix: Sequence[int], fim: FimTokens | None = None,
                        bos_token_id: int | None = None, separator: Sequence[int] = (),
                        use_suffix: bool = True) -> InfillPrompt:
    """The prompt ids for one hole and the layout used (see the module note).

    `separator` goes between suffix and prefix in the suffix-first layout (e.g. the ids of a newline or a
    "..." marker); `bos_token_id` starts every layout when given.
    """
    head = [bos_token_id] if bos_token_id is not None else []
    if fim is not None and use_suffix:
        return InfillPrompt(head + [fim.prefix_id, *prefix, fim.suffix_id, *suffix, fim.middle_id], "fim-psm")
    if use_suffix and len(suffix) > 0:
        return InfillPrompt(head + [*suffix, *separator, *prefix], "suffix-first")
    return InfillPrompt(head + list(prefix), "prefix-only")
