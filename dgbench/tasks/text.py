"""A byte-level text codec for the embedded (random-weight) models, which ship no tokenizer.

Each UTF-8 byte b becomes id b + offset, offset = max(special ids) + 1, so prompts never hold a special
id (pad, EOS, BOS, mask). Needs a vocabulary of at least offset + 256 ids: every embedded spec has it
(tiny specs 512, small specs 4096). Decoding stops at the first EOS or pad id and drops every other id
outside the byte range.
"""

from __future__ import annotations

from dgbench.errors import ConfigError


def offset(spec) -> int:
    return max(int(v) for v in spec.special_tokens.values()) + 1


def check_spec(spec) -> None:
    vocab = spec.text_config["vocab_size"]
    if vocab < offset(spec) + 256:
        raise ConfigError(f"model {spec.name!r}: vocabulary {vocab} is too small for the byte-level codec "
                          f"(needs {offset(spec) + 256}); quality tasks run on the embedded specs")


def encode(text: str, spec) -> list[int]:
    check_spec(spec)
    off = offset(spec)
    return [b + off for b in text.encode("utf-8")]


def encode_template(text: str, blanks, spec) -> list[int | None]:
    """Ids of an in-place template (a decoder's `fill_template` input): None at the blank offsets."""
    ids: list[int | None] = list(encode(text, spec))
    for pos in blanks:
        ids[pos] = None
    return ids


def decode(ids, spec) -> str:
    off = offset(spec)
    stop = {int(spec.special_tokens[k]) for k in ("eos", "pad") if k in spec.special_tokens}
    out = bytearray()
    for i in ids:
        i = int(i)
        if i in stop:
            break
        if off <= i < off + 256:
            out.append(i - off)
    return out.decode("utf-8", errors="replace")
