"""Text <-> ids for one model: the checkpoint's own tokenizer, or the byte codec.

A spec derived from a checkpoint that ships a tokenizer (spec.tokenizer, dgbench/models/checkpoints.py)
encodes every task prompt, speed prompt and lm-eval request with it, and applies its chat template when
`chat` is on (default: when the tokenizer has one). The embedded and synthetic models ship none and keep
the byte-level codec (dgbench/tasks/text.py). No torch is imported here; it sits beside text.py, below
the scenarios and lm-eval adapter that encode with it.

Streaming (dgbench serve, the serve scenario): `stream()` returns an incremental detokenizer. A canvas can
end inside a multi-byte character; the byte codec keeps the partial bytes for the next chunk (an
incremental UTF-8 decoder) and the tokenizer codec sends decode(all ids so far) minus the text already
sent (the usual detokenizer trick), so the concatenated chunk texts equal the decoded whole.
"""

from __future__ import annotations

import codecs

from dgbench.errors import ConfigError


def _before_stop(ids, stop: set[int]) -> list[int]:
    kept = []
    for i in ids:
        if int(i) in stop:
            break
        kept.append(int(i))
    return kept


class ByteCodec:
    """dgbench.tasks.text behind the codec interface; one id per UTF-8 byte, no chat template."""

    name = "bytes"
    chat = False

    def __init__(self, spec):
        self.spec = spec

    def encode(self, text: str) -> list[int]:
        from dgbench.tasks.text import encode

        return encode(text, self.spec)

    def render(self, prompt: str) -> str:
        return prompt

    def encode_prompt(self, prompt: str) -> list[int]:
        return self.encode(prompt)

    def encode_template(self, text: str, blanks) -> list[int | None]:
        from dgbench.tasks.text import encode_template

        return encode_template(text, blanks, self.spec)

    def decode(self, ids) -> str:
        from dgbench.tasks.text import decode

        return decode(ids, self.spec)

    def content(self, ids) -> list[int]:
        return _before_stop(ids, {int(self.spec.special_tokens[k]) for k in ("eos", "pad")
                                  if k in self.spec.special_tokens})

    def describe(self) -> dict:
        return {"codec": "bytes", "chat_template": False}

    def stream(self):
        from dgbench.tasks import text

        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        off = text.offset(self.spec)

        def piece(ids: list[int], final: bool = False) -> str:
            raw = bytes(i - off for i in ids if off <= i < off + 256)
            return decoder.decode(raw, final=final)
        return piece


class TokenizerCodec:
    """The checkpoint's tokenizer (transformers AutoTokenizer, offline)."""

    def __init__(self, spec):
        from transformers import AutoTokenizer

        self.spec = spec
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(spec.tokenizer, local_files_only=True,
                                                           trust_remote_code=spec.trust_remote_code)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"model {spec.name!r}: cannot load the tokenizer in {spec.tokenizer} "
                              f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
        has_template = bool(getattr(self.tokenizer, "chat_template", None))
        if spec.chat and not has_template:
            raise ConfigError(f"model {spec.name!r}: chat: true but the tokenizer in {spec.tokenizer} has no chat "
                              "template (tokenizer_config.json chat_template / chat_template.jinja)")
        self.chat = has_template if spec.chat is None else bool(spec.chat)
        self.name = f"tokenizer:{spec.tokenizer}"
        tokens = spec.special_tokens
        self.stop = {int(tokens[k]) for k in ("eos", "pad") if k in tokens}

    def encode(self, text: str) -> list[int]:
        """A text piece's ids, no special tokens added (contexts, continuations, template pieces)."""
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def render(self, prompt: str) -> str:
        """The prompt as the model sees it: in the chat template (one user turn + the generation prompt)
        when chat is on, else as written."""
        if not self.chat:
            return prompt
        return self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                  add_generation_prompt=True)

    def encode_prompt(self, prompt: str) -> list[int]:
        """A whole prompt: the chat template's own special tokens, or the tokenizer's (e.g. BOS)."""
        if self.chat:
            return list(self.tokenizer.encode(self.render(prompt), add_special_tokens=False))
        return list(self.tokenizer.encode(prompt, add_special_tokens=True))

    def encode_template(self, text: str, blanks) -> list[int | None]:
        """An in-place template: each known run of characters tokenized on its own, each blank one None
        (one token per blank: a subword tokenizer has no character positions)."""
        ids: list[int | None] = []
        start = 0
        for pos in sorted(blanks):
            ids += self.encode(text[start:pos])
            ids.append(None)
            start = pos + 1
        return ids + self.encode(text[start:])

    def content(self, ids) -> list[int]:
        """The ids before the first EOS or pad (the ids of the checkpoint's config and tokenizer)."""
        return _before_stop(ids, self.stop)

    def decode(self, ids) -> str:
        return self.tokenizer.decode(self.content(ids), skip_special_tokens=True)

    def stream(self):
        return stream_decoder(self.tokenizer)

    def describe(self) -> dict:
        return {"codec": "tokenizer", "tokenizer": self.spec.tokenizer, "chat_template": self.chat,
                "tokenizer_class": type(self.tokenizer).__name__}


_LOADED: dict[tuple, TokenizerCodec] = {}


def codec_for(spec) -> ByteCodec | TokenizerCodec:
    """The codec of a spec; a tokenizer loads once per (spec, directory, chat) in a process."""
    if not spec.tokenizer:
        return ByteCodec(spec)
    key = (spec.name, spec.tokenizer, spec.chat, spec.trust_remote_code, tuple(sorted(spec.special_tokens.items())))
    if key not in _LOADED:
        _LOADED[key] = TokenizerCodec(spec)
    return _LOADED[key]


def stream_decoder(tokenizer):
    """piece(ids, final) -> the new text of a streamed chunk, for a transformers tokenizer."""
    seen: list[int] = []
    sent = [""]

    def piece(ids: list[int], final: bool = False) -> str:
        seen.extend(ids)
        text = tokenizer.decode(seen, skip_special_tokens=True)
        if not final and text.endswith("\ufffd"):   # an unfinished character: wait for its next bytes
            return ""
        out, sent[0] = text[len(sent[0]):], text
        return out
    return piece
