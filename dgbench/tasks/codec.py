"""Text <-> ids for a served or load-tested model, and incremental detokenization for streamed chunks.

The embedded specs ship no tokenizer of their own use: dgbench's byte-level codec (dgbench.tasks.text) maps
each UTF-8 byte to one id, so a chunk of k tokens is k bytes. A canvas can end inside a multi-byte
character; the stream decoder keeps the partial bytes for the next chunk (an incremental UTF-8 decoder),
so the concatenated chunk texts equal the decoded whole. A checkpoint with a tokenizer directory uses it
(text of a chunk = decode(all ids so far) minus the text already sent, the usual detokenizer trick).
"""

from __future__ import annotations

import codecs
from pathlib import Path

from dgbench.errors import ConfigError


class ByteCodec:
    name = "dgbench-bytes"

    def __init__(self, spec):
        from dgbench.tasks import text

        text.check_spec(spec)
        self.spec = spec
        self.offset = text.offset(spec)

    def encode(self, value: str) -> list[int]:
        return [b + self.offset for b in value.encode("utf-8")]

    def stream(self):
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        off = self.offset

        def piece(ids: list[int], final: bool = False) -> str:
            raw = bytes(i - off for i in ids if off <= i < off + 256)
            return decoder.decode(raw, final=final)
        return piece


class TokenizerCodec:
    def __init__(self, path: Path):
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.name = f"tokenizer:{path}"

    def encode(self, value: str) -> list[int]:
        return list(self.tokenizer.encode(value, add_special_tokens=False))

    def stream(self):
        seen: list[int] = []
        sent = [""]

        def piece(ids: list[int], final: bool = False) -> str:
            seen.extend(ids)
            text = self.tokenizer.decode(seen, skip_special_tokens=True)
            if not final and text.endswith("\ufffd"):   # an unfinished character: wait for its next bytes
                return ""
            out, sent[0] = text[len(sent[0]):], text
            return out
        return piece


def codec_for(spec):
    """The byte codec when the vocabulary holds it (every embedded spec), else the checkpoint's tokenizer."""
    vocab = spec.text_config.get("vocab_size", 0)
    from dgbench.tasks.text import offset

    if vocab >= offset(spec) + 256 and spec.weights in ("synthetic", "embedded"):
        return ByteCodec(spec)
    if spec.checkpoint and Path(str(spec.checkpoint)).is_dir():
        return TokenizerCodec(Path(str(spec.checkpoint)))
    raise ConfigError(f"model {spec.name!r}: no tokenizer to serve text with (the byte codec needs a vocabulary "
                      f"of {offset(spec) + 256}, and the checkpoint is no local directory)")
