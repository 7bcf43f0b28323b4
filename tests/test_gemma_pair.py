"""The trained DiffusionGemma pair: the uniform-diffusion objective (corruption, canvas targets, a short run
that learns and reloads), and the shipped checkpoints (bf16 storage, held-out Sudoku, the adaptive stop,
and dgbench-diffusion bit-identical to transformers' generate on the trained weights)."""

import pytest
import torch
from test_engine_parity import ours, reference

from dgbench.decoding.entropy_bound import EntropyBoundSpec
from dgbench.models.loading import load_model, load_pretrained
from dgbench.models.registry import get
from dgbench.models.synthetic import count_parameters
from dgbench.tasks.text import encode, encode_template
from dgbench.telemetry.timing import Clock
from dgbench.training import data, gemma_pair
from dgbench.training.backbone import GEMMA_CANVAS_LENGTH, SPECIAL_TOKENS, VOCAB_SIZE
from dgbench.training.checkpoint import save_checkpoint
from dgbench.training.evaluate import make_decoder
from dgbench.training.loop import TrainConfig, train

EOS = SPECIAL_TOKENS["eos"]


def test_corruption_is_uniform_over_the_vocabulary_and_never_touches_given_positions():
    B, L = 400, GEMMA_CANVAS_LENGTH
    target = torch.full((B, L), 7)
    fixed = torch.zeros(B, L, dtype=torch.bool)
    fixed[:, :5] = True
    noisy = gemma_pair.corrupt(target, fixed, torch.Generator().manual_seed(0))
    assert torch.equal(noisy[:, :5], target[:, :5])
    changed = (noisy[:, 5:] != 7).float().mean().item()
    assert 0.45 < changed < 0.55                      # E[t] = 1/2 with t ~ U(0, 1), minus 1/V accidental hits
    drawn = noisy[:, 5:][noisy[:, 5:] != 7]
    assert drawn.min() >= 0 and drawn.max() < VOCAB_SIZE and drawn.unique().numel() > 0.9 * VOCAB_SIZE


def test_canvas_targets_fill_the_canvas_in_place_or_after_the_prompt():
    _, (puzzle,) = data.TrainingStream(["sudoku4all"], 0).batch(0, 1)
    ids, fixed = gemma_pair.canvas_target(puzzle, in_place=True)
    assert len(ids) == GEMMA_CANVAS_LENGTH and ids[19:] == [EOS] * (GEMMA_CANVAS_LENGTH - 19)
    assert ids[:19] == gemma_pair.encode(puzzle.answer)
    givens = [k for k, ch in enumerate(puzzle.template) if ch != "."]
    assert [k for k, f in enumerate(fixed) if f] == givens            # givens and newlines, nothing else
    ids2, fixed2 = gemma_pair.canvas_target(puzzle, in_place=False)
    assert ids2 == ids and not any(fixed2)
    _, (fill,) = data.TrainingStream(["pyfill"], 0).batch(0, 1)
    ids, fixed = gemma_pair.canvas_target(fill, in_place=True)
    gap = len(fill.blanks)
    body = gemma_pair.encode(fill.answer)
    assert ids[:gap] == body + [EOS] * (gap - len(body)) and not any(fixed[:gap]) and all(fixed[gap:])
    assert ids[gap:] == gemma_pair.encode(fill.template[gap:])


def test_uniform_diffusion_training_lowers_the_loss_and_reloads_in_bf16(tmp_path):
    cfg = TrainConfig("uniform-diffusion", ("sudoku4all",), steps=20, seed=1, batch_size=6, warmup=4,
                      backbone="gemma4")
    result = train(cfg, show_progress=False)
    first, last = sum(result.losses[:4]) / 4, sum(result.losses[-4:]) / 4
    assert last < 0.7 * first, result.losses
    assert cfg.command("X").startswith("dgbench train --objective uniform-diffusion --backbone gemma4 ")
    save_checkpoint(result.model.to(torch.bfloat16), tmp_path)
    reloaded = load_pretrained(tmp_path)
    assert type(reloaded).__name__ == "DiffusionGemmaForBlockDiffusion" and reloaded.dtype == torch.float32
    assert reloaded.model.encoder.vision_tower is None
    assert count_parameters(reloaded) == count_parameters(result.model)


# ---------------------------------------------------------------- the shipped checkpoints

@pytest.fixture(scope="module")
def shipped():
    return load_model(get("ref-diffusiongemma")), load_model(get("ref-gemma4"))


def test_shipped_pair_is_matched_bf16_and_small(shipped):
    from pathlib import Path

    dg, ar = shipped
    assert type(dg).__name__ == "DiffusionGemmaForBlockDiffusion" and type(ar).__name__ == "Gemma4ForCausalLM"
    assert dg.config.text_config.hidden_size == ar.config.hidden_size == 128
    assert dg.config.text_config.num_experts == ar.config.num_experts == 4
    sizes = {name: Path(get(name).checkpoint, "model.safetensors").stat().st_size
             for name in ("ref-diffusiongemma", "ref-gemma4", "ref-diffusion", "ref-ar")}
    assert sum(sizes.values()) <= 20 * 2 ** 20, sizes
    # bf16 storage: 2 bytes per stored parameter (tied encoder/decoder weights stored once), plus the header
    assert sizes["ref-diffusiongemma"] < 2.1 * count_parameters(dg)


def test_shipped_diffusiongemma_fills_blanks_above_chance_and_stops_early(shipped):
    from dgbench.tasks.text import decode

    dg, _ = shipped
    decoder = make_decoder(dg, "uniform-diffusion", backbone="gemma4")
    items = data.heldout_items("sudoku4all", 2)[-8:]             # 10 and 11 givens
    right = blanks = 0
    steps = []
    for item in items:
        ids = torch.tensor([encode(item.prompt, decoder.spec)])
        rec = decoder.fill_template(ids, torch.ones_like(ids), encode_template(item.template, item.blanks,
                                                                               decoder.spec), 0, Clock("cpu"))
        out = decode(rec.tokens[0], decoder.spec)
        assert all(out[k] == item.template[k] for k in range(len(item.template)) if k not in item.blanks)
        right += sum(out[k] == item.answer[k] for k in item.blanks)
        blanks += len(item.blanks)
        steps += rec.steps_per_canvas
    # A budget-limited model (its card: 6% of grids solved), but it has learnt the task: blank cells are
    # right well above the 1-in-4 of a guess.
    assert right / blanks > 0.4, (right, blanks)
    assert max(steps) < rec.step_cap, steps                     # the adaptive stop fired on every canvas


@pytest.mark.parametrize("seed", range(3))
def test_dgbench_diffusion_matches_transformers_generate_on_the_trained_checkpoint(shipped, seed):
    dg, _ = shipped
    items = data.heldout_items("sudoku4all", 1)[:4]               # four puzzles, one prompt length
    ids = torch.tensor([encode(it.prompt, get("ref-diffusiongemma")) for it in items])
    mask = torch.ones_like(ids)
    spec = EntropyBoundSpec(vocab_size=VOCAB_SIZE, canvas_length=GEMMA_CANVAS_LENGTH, max_denoising_steps=48,
                            eos_token_id=EOS, pad_token_id=SPECIAL_TOKENS["pad"])
    theirs = reference(dg, ids, mask, spec, 40, seed)
    mine = ours(dg, ids, mask, spec, 40, seed)
    assert torch.equal(mine.sequences, theirs.sequences)
    new = mine.sequences[:, ids.shape[1]:]
    assert torch.allclose(theirs.tokens_per_forward, (new != SPECIAL_TOKENS["pad"]).sum(-1) / mine.passes_per_sequence)
    assert max(mine.steps_per_canvas) < 48                      # trained: the stop fires, in both loops
