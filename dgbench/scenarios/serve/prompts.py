"""Prompts for the serve scenario: a quality task's items, a user's file, or seeded synthetic text.

Task prompts are the quality tasks' own (dgbench.tasks: TASKS[name].items, in their after-the-prompt
form: a server sees text, it cannot be handed an in-place template). A file is .jsonl (one object per line
with `prompt`, or `messages` for the chat API) or plain text (one prompt per line).
"""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

from dgbench.errors import ConfigError

MAX_PROMPT_FILE_BYTES = 64 * 2**20


def read_prompt_file(path: Path, key: str) -> list:
    """Prompts of a .jsonl or .txt file: strings, or message lists (chat). Errors name the file and line."""
    if not path.is_file():
        raise ConfigError(f"{key}: {path}: no such file; give a .jsonl (one {{\"prompt\": ...}} per line) or .txt")
    if path.stat().st_size > MAX_PROMPT_FILE_BYTES:
        raise ConfigError(f"{key}: {path}: larger than {MAX_PROMPT_FILE_BYTES // 2**20} MiB; keep the prompts "
                          "the benchmark needs")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{key}: {path}: not UTF-8 text (byte {exc.start})") from None
    prompts: list = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if path.suffix != ".jsonl":
            prompts.append(line)
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{key}: {path}:{i}: not JSON ({exc.msg})") from None
        value = obj.get("prompt", obj.get("messages")) if isinstance(obj, dict) else None
        if not (isinstance(value, str) or (isinstance(value, list) and value)):
            raise ConfigError(f"{key}: {path}:{i}: needs a string 'prompt' or a list 'messages'")
        prompts.append(value)
    if not prompts:
        raise ConfigError(f"{key}: {path}: holds no prompts")
    return prompts


def load_prompts(config: dict, seed: int) -> list:
    if config["source"] == "file":
        return read_prompt_file(Path(config["path"]).expanduser(), "prompts.path")[:config["n"]]
    if config["source"] == "synthetic":
        rng = random.Random(f"serve-prompts:{seed}")
        alphabet = string.ascii_lowercase + " "
        return ["".join(rng.choice(alphabet) for _ in range(config["length"])) for _ in range(config["n"])]
    from dgbench.tasks import TASKS
    from dgbench.validation import Field, Location, validate

    task = TASKS[config["task"]]
    task_config = validate({**config["task_config"], "n": config["n"]}, Field(dict, fields=task.fields),
                           Location("prompts.task_config"), ("prompts", "task_config"))
    return [item.prompt for item in task.items(task_config, None, seed, "autoregressive")]
