"""`dgbench train` and the shipped reference pair: a shortened training run (loss falls, the checkpoint
reloads through the normal loader with the same outputs), the shipped models against the real Sudoku
scorer, split disjointness, the quality suite's wiring, and one-line errors for bad input."""

import json

import pytest
import torch

from dgbench.harness.runner import decoder_weights
from dgbench.harness.suite import load_suite
from dgbench.harness.sweep import expand
from dgbench.models.loading import load_model, load_pretrained
from dgbench.models.params import formula
from dgbench.models.registry import get
from dgbench.tasks.text import encode as codec_encode
from dgbench.training import data
from dgbench.training.checkpoint import save_checkpoint
from dgbench.training.evaluate import DECODING, evaluate
from dgbench.training.loop import TrainConfig, train
from dgbench.training.objectives import make_batch

from conftest import run_cli


@pytest.mark.parametrize("objective", ["diffusion", "autoregressive"])
def test_short_training_lowers_the_loss_and_the_checkpoint_reloads_with_the_same_outputs(objective, tmp_path):
    cfg = TrainConfig(objective, ("sudoku4",), steps=24, seed=3, batch_size=8, warmup=4)
    result = train(cfg, show_progress=False)
    first, last = sum(result.losses[:4]) / 4, sum(result.losses[-4:]) / 4
    assert last < 0.75 * first, result.losses

    save_checkpoint(result.model, tmp_path)
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= {p.name for p in tmp_path.iterdir()}
    reloaded = load_pretrained(tmp_path)                       # the loader every dgbench path uses
    assert type(reloaded).__name__ == "LlamaForCausalLM"
    _, items = data.TrainingStream(["sudoku4"], seed=11).batch(0, 3)
    batch = make_batch(items, objective, data.GEN_LENGTH["sudoku4"])
    with torch.no_grad():
        mask = batch.attention_mask.long()
        assert torch.equal(reloaded(input_ids=batch.input_ids, attention_mask=mask).logits,
                           result.model(input_ids=batch.input_ids, attention_mask=mask).logits)


def test_masked_in_place_rows_score_only_the_blanks_and_keep_the_givens_clean():
    from dgbench.training import learnable
    from dgbench.training.objectives import encode, in_place_flags

    sudoku, pyfill = learnable.items("sudoku4all", 1, "t")[0], learnable.items("pyfill", 1, "t")[0]
    batch = make_batch([sudoku, pyfill, sudoku], "diffusion", data.GEN_LENGTH["sudoku4all"], [True, True, False])
    for b, item in enumerate([sudoku, pyfill]):
        start = len(encode(item.prompt))
        row = batch.input_ids[b, start:start + len(item.template)].tolist()
        scored = batch.answer_mask[b, start:start + len(item.template)].tolist()
        assert [k for k, s in enumerate(scored) if s] == list(item.blanks)          # only the blanks
        assert batch.answer_mask[b].sum() == len(item.blanks)
        for k, ch in enumerate(item.template):                                       # givens as given
            if k not in item.blanks:
                assert row[k] == encode(ch)[0]
    gap = bytes(t - 4 for t in batch.input_ids[1, len(encode(pyfill.prompt)):][:len(pyfill.answer)].tolist())
    assert gap.decode() == pyfill.answer                                             # the gap holds the answer
    # After-prompt row: the whole grid and its EOS padding, all scored.
    assert batch.answer_mask[2].sum() == data.GEN_LENGTH["sudoku4all"]
    # pyfill rows are always in place; v1 batches draw nothing (their cards' commands reproduce).
    g = torch.Generator().manual_seed(0)
    assert in_place_flags([pyfill] * 8, g) == [True] * 8
    assert in_place_flags(data.heldout_items("sudoku4", 2), g) is None


def test_shipped_pair_is_matched_and_loads_with_its_tokenizer():
    diff_spec, ar_spec = get("ref-diffusion"), get("ref-ar")
    assert diff_spec.text_config == ar_spec.text_config and formula(diff_spec).total == formula(ar_spec).total
    model = load_model(diff_spec)
    ar = load_model(ar_spec)
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in ar.parameters())
    # The tokenizer files shipped beside the weights encode exactly like the tasks' byte codec.
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(diff_spec.checkpoint, local_files_only=True)
    prompt = data.heldout_items("sudoku4", 1)[0].prompt
    assert tokenizer.encode(prompt, add_special_tokens=False) == codec_encode(prompt, diff_spec)


def test_shipped_diffusion_model_solves_heldout_4x4_puzzles():
    model = load_model(get("ref-diffusion"))
    # Decoded by the dgbench-masked engine, scored by dgbench.tasks.sudoku.check (solved = whole grid).
    # At the card's one-token-per-step operating point (the quality suite's diffusion-1tok row).
    result = evaluate(model, "diffusion", ["sudoku4"], n=8, knobs={"threshold": 1.0})["sudoku4"]
    for text in result["outputs"]:
        assert len(text.splitlines()) == 4
    assert result["correct"] >= 7, result["outputs"]


def test_training_never_draws_heldout_or_quality_suite_items():
    from dgbench.tasks import sudoku

    reserved = data.reserved_keys("sudoku4")
    heldout = {it.key for it in data.heldout_items("sudoku4", 50)}
    suite = {"".join(map(str, p.grid)) for p in sudoku.generate_puzzles(4, 50, 8, 0)}  # what quality scores
    assert heldout <= reserved and suite <= reserved and heldout.isdisjoint(suite)
    stream = data.TrainingStream(["sudoku4", "mc"], seed=0)
    drawn = [it.key for i in range(6) for it in stream.batch(i, 16)[1]]
    assert len(drawn) == 96 and reserved.isdisjoint(drawn)


def test_quality_suite_runs_the_pair_with_the_cards_decoding():
    suite = load_suite("quality")
    by_name = {d["name"]: d for d in suite["decoders"]}
    assert {d["model"] for d in suite["decoders"]} == {"ref-diffusion", "ref-ar", "ref-diffusiongemma", "ref-gemma4"}
    for name, model, objective in (("diffusion", "ref-diffusion", "diffusion"), ("ar", "ref-ar", "autoregressive"),
                                   ("diffusiongemma", "ref-diffusiongemma", "uniform-diffusion"),
                                   ("gemma4", "ref-gemma4", "autoregressive")):
        engine, knobs = DECODING[objective]
        assert by_name[name]["model"] == model and by_name[name]["engine"] == engine
        assert {k: by_name[name]["knobs"][k] for k in knobs} == knobs
    # The card's second operating point of ref-diffusion, with the knobs its card was scored with.
    from pathlib import Path

    variant = json.loads((Path(get("ref-diffusion").checkpoint) / "training.json").read_text())["heldout_variants"]
    assert by_name["diffusion-1tok"]["knobs"]["threshold"] == variant["one token per step"]["knobs"]["threshold"]
    assert {p.task for p in expand(suite)} == {"sudoku", "pyfill", "mc"}
    # The pair was trained on the compact prompt; the suite must score it on the same text.
    assert suite["tasks"]["sudoku"]["prompt"] == "compact"
    assert suite["tasks"]["sudoku"]["n"] <= data.QUALITY_ITEMS, "suite items beyond the reserved ones may be trained on"
    assert decoder_weights(suite) == "embedded" and decoder_weights(load_suite("smoke")) == "synthetic"


@pytest.mark.parametrize("args, message", [
    (["--tasks", "sudoku5"], "--tasks: unknown task 'sudoku5'; did you mean 'sudoku6'"),
    (["--steps", "0"], "--steps must be at least 1"),
    (["--lr", "5"], "--lr must be between 0 and 1"),
    (["--out", "{file}"], "exists and is not a folder"),
    (["--out", "{full}"], "folder is not empty"),
    (["--backbone", "gemma4"], "--objective diffusion runs on the llama backbone, not --backbone gemma4"),
])
def test_bad_train_input_is_one_line_and_exit_2(args, message, tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "config.json").write_text("{}")
    args = [a.format(file=tmp_path / "file", full=tmp_path / "full") for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "new")]
    proc = run_cli("train", "--objective", "diffusion", *args, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not (tmp_path / "new").exists()


def test_train_command_writes_checkpoint_card_and_curve(tmp_path):
    out = tmp_path / "tiny"
    proc = run_cli("train", "--objective", "autoregressive", "--tasks", "sudoku4,mc", "--steps", "2",
                   "--batch-size", "4", "--eval-n", "2", "--out", out, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta = json.loads((out / "training.json").read_text())
    assert len(meta["losses"]) == 2 and set(meta["heldout"]) == {"sudoku4", "mc"}
    assert meta["command"].startswith("dgbench train --objective autoregressive --tasks sudoku4,mc --steps 2")
    card = (out / "README.md").read_text()
    assert meta["command"] in card and "| sudoku4 | " in card and "loss.png" in card
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert load_pretrained(out).config.vocab_size == 260


def test_storage_dtype_bfloat16_stores_and_scores_the_rounded_weights(tmp_path):
    from safetensors import safe_open

    out = tmp_path / "bf16"
    proc = run_cli("train", "--objective", "autoregressive", "--tasks", "mcc", "--steps", "2", "--batch-size", "4",
                   "--eval-n", "2", "--storage-dtype", "bfloat16", "--out", out, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with safe_open(out / "model.safetensors", "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.bfloat16}
    meta = json.loads((out / "training.json").read_text())
    assert meta["storage_dtype"] == "bfloat16" and "--storage-dtype bfloat16" in meta["command"]
    assert "Stored in bfloat16" in (out / "README.md").read_text()
    # The Llama default stays float32 and its command does not spell the flag out.
    assert "--storage-dtype" not in TrainConfig("diffusion", ("mcc",), 1).command("x")


def test_a_decoding_variant_is_scored_on_the_same_items_and_shown_in_the_card(tmp_path):
    from dgbench.training.checkpoint import read_meta
    from dgbench.training.run import run_training
    from dgbench.training.variants import main as variants_main

    out = tmp_path / "m"
    run_training("diffusion", ["sudoku4all"], 2, 0, 4, 2e-3, out, eval_n=1, show_progress=False)
    assert variants_main([str(out), "--knobs", '{"threshold": 1.0}', "--label", "one token per step"]) == 0
    meta = read_meta(out)
    v = meta["heldout_variants"]["one token per step"]
    assert v["knobs"] == {"remasking": "low_confidence", "threshold": 1.0}
    assert v["heldout"]["sudoku4all"]["n"] == meta["heldout"]["sudoku4all"]["n"] == 8      # 1 per clue count
    assert len(v["heldout_correct"]["sudoku4all"]) == 8
    from dgbench.training.checkpoint import write_card

    write_card(out, meta)
    card = (out / "README.md").read_text()
    assert "### The same weights decoded with one token per step" in card
    assert "python -m dgbench.training.variants" in card and card.count("4x4 Sudoku per clue count") == 2
