"""Functions the local lm-eval task YAMLs (suites/lm_eval_tasks/) call through `!function`.

The items are dgbench's own: the procedural four-way multiple choice set (dgbench/tasks/multiple_choice.py)
written to suites/lm_eval_tasks/data/dgbench_mc.jsonl by `write_task_data`, and the user's GPQA CSV read
by dgbench's GPQA loader. Prompts are built here with dgbench's `format_prompt` and letters extracted with
dgbench's `extract_answer`, so lm-eval and dgbench's quality scenario see the same text and apply the
same rule: the accuracies can be compared item by item.

Why `custom_dataset` instead of `dataset_kwargs.data_files` alone: lm-eval hands data_files to
`datasets.load_dataset`, which resolves a relative path against the working directory, not the YAML's
folder; resolving it here makes the tasks work from any directory. Importing this module also registers
dgbench's lm-eval models (lm_eval.py), which is how `lm_eval --model dgbench-... --tasks FILE.yaml` finds
them on an lm-eval that scans no plug-in entry points (see lm_eval.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from dgbench.errors import ConfigError
from dgbench.integrations import lm_eval as _registers_models  # noqa: F401  (side effect: registration)

MC_FILE = "dgbench_mc.jsonl"
MC_ITEMS, MC_SEED = 50, 0
GPQA_ENV = "DGBENCH_GPQA_PATH"


def task_dir() -> Path:
    """suites/lm_eval_tasks, in the checkout or inside the installed package (dgbench/_data/suites links it)."""
    from importlib import resources

    return Path(str(resources.files("dgbench") / "_data" / "suites" / "lm_eval_tasks"))


def _rows(items) -> list[dict]:
    from dgbench.tasks.multiple_choice import format_prompt

    return [{"id": it.id, "question": it.question, "choices": list(it.choices), "answer_index": it.answer_index,
             "answer_letter": it.answer_letter, "source": it.source, "prompt": format_prompt(it, "zero_shot")}
            for it in items]


def write_task_data(out_dir: Path | None = None, n: int = MC_ITEMS, seed: int = MC_SEED) -> Path:
    """(Re)write data/dgbench_mc.jsonl from dgbench's procedural items (seeded: the same file every time)."""
    from dgbench.tasks.multiple_choice import procedural_items

    path = (out_dir or task_dir()) / "data" / MC_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for row in _rows(procedural_items(n, seed)):
            row.pop("prompt")      # built at load time by format_prompt, never stored twice
            fh.write(json.dumps(row, sort_keys=True) + "\n")
    return path


def _dataset_dict(rows: list[dict]):
    import datasets

    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


def mc_dataset(**_metadata):
    """lm-eval custom_dataset: the procedural MC items from the local JSON file, with dgbench's prompts."""
    import datasets

    from dgbench.tasks.multiple_choice import format_prompt, MCItem

    path = task_dir() / "data" / MC_FILE
    if not path.is_file():
        raise ConfigError(f"{path}: missing; regenerate it with "
                          "`python -c 'from dgbench.integrations.lm_eval_tasks import write_task_data; write_task_data()'`")
    data = datasets.load_dataset("json", data_files=str(path), split="train")
    rows = []
    for row in data:
        item = MCItem(row["id"], row["question"], tuple(row["choices"]), row["answer_index"], row["source"])
        rows.append({**row, "prompt": format_prompt(item, "zero_shot")})
    return _dataset_dict(rows)


def gpqa_dataset(gpqa_path: str | None = None, gpqa_seed: int = 0, **_metadata):
    """lm-eval custom_dataset: the user's own GPQA CSV (never bundled), through dgbench's loader, so the
    choice order is the one dgbench's quality scenario uses for the same seed. The path comes from
    `--metadata '{"gpqa_path": "/path/gpqa_diamond.csv"}'` (or a suite's lm_eval.metadata) or $DGBENCH_GPQA_PATH."""
    from dgbench.tasks.multiple_choice import load_gpqa_csv

    path = gpqa_path or os.environ.get(GPQA_ENV)
    if not path:
        raise ConfigError("GPQA path not set: pass --metadata '{\"gpqa_path\": \"/path/to/gpqa_diamond.csv\"}' to "
                          f"lm_eval, set {GPQA_ENV}, or give metadata: {{gpqa_path: ...}} in the suite's lm_eval task; "
                          "GPQA is gated and never bundled: request access to Idavidrein/gpqa on Hugging Face")
    return _dataset_dict(_rows(load_gpqa_csv(Path(path).expanduser(), int(gpqa_seed), "metadata gpqa_path")))


def extract_letters(resps, docs):
    """lm-eval custom filter: dgbench's answer extraction (extract_answer); no letter becomes ""."""
    from dgbench.tasks.multiple_choice import extract_answer

    return [[extract_answer(r) or "" for r in doc_resps] for doc_resps in resps]
