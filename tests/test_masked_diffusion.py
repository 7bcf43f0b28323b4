"""The masked-diffusion sampler (LLaDA / Dream / Fast-dLLM) and the `dgbench-masked` engine.

Models are tiny random-weight transformers built from config classes (nothing is downloaded). The Llama
uses initializer_range 0.3 so that its predictions depend on context: at the default 0.02 a random
model predicts nearly the same token everywhere and every comparison below would pass trivially.
"""

from __future__ import annotations

import json

import pytest
import torch

from dgbench.backends.base import ENGINES, GenerationRecord
from dgbench.backends import masked_lm
from dgbench.backends.masked_lm import load_masked_model, make_denoiser
from dgbench.decoding import masked
from dgbench.decoding.masked import MaskedDiffusionSpec, generate
from dgbench.errors import ConfigError
from dgbench.models.registry import ModelSpec
from dgbench.telemetry.timing import Clock
from dgbench.validation import Location, validate_mapping

VOCAB, MASK = 128, 3
TOKENS = {"pad": 0, "eos": 1, "bos": 2, "mask": MASK}
LLAMA = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=256, initializer_range=0.3, tie_word_embeddings=False,
             pad_token_id=0, eos_token_id=1, bos_token_id=2)


def tiny_llama(seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(**LLAMA)).eval()


def tiny_bert(seed: int = 0):
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(seed)
    return BertForMaskedLM(BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                      intermediate_size=64, max_position_embeddings=128)).eval()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # These models are tiny: on a shared 2-core machine a second intra-op thread only spins (a forward
    # took 270 ms with 2 threads under load, 1.3 ms with 1).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def llama():
    return tiny_llama()


@pytest.fixture(scope="module")
def prompts():
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(4, VOCAB, (2, 8), generator=gen)
    attn = torch.ones(2, 8, dtype=torch.bool)
    attn[1, :2] = False                    # the second prompt is left-padded by two
    ids[1, :2] = TOKENS["pad"]
    return ids, attn


# ---- an independent LLaDA, written from the paper's description (no dgbench code) ----

def reference_logits(model, x, attn):
    """Every position attends to every unpadded position; positions 0..T-1."""
    B, T = x.shape
    bias = torch.where(attn, 0.0, torch.finfo(torch.float32).min)[:, None, None, :].expand(B, 1, T, T)
    return model(input_ids=x, attention_mask=bias, position_ids=torch.arange(T)[None]).logits.float()


@torch.no_grad()
def reference_llada(model, prompt, attn, gen_length, block_length, steps, temperature, remasking):
    B, P = prompt.shape
    x = torch.cat([prompt, torch.full((B, gen_length), MASK)], dim=1)
    attn = torch.cat([attn, torch.ones(B, gen_length, dtype=torch.bool)], dim=1)
    n_blocks = gen_length // block_length
    per_block = steps // n_blocks
    for blk in range(n_blocks):
        start, end = P + blk * block_length, P + (blk + 1) * block_length
        counts = []
        for b in range(B):  # masks spread evenly over the block's steps, remainder to the first steps
            n = int((x[b, start:end] == MASK).sum())
            counts.append([n // per_block + (1 if i < n % per_block else 0) for i in range(per_block)])
        for i in range(per_block):
            logits = reference_logits(model, x, attn)
            logits[:, :, MASK] = float("-inf")       # dgbench never predicts the mask token
            if temperature > 0:                      # Gumbel-max in float64, as the reference code
                l64 = logits.double()
                u = torch.rand_like(l64)
                x0 = (l64.exp() / (-torch.log(u)) ** temperature).argmax(-1)
            else:
                x0 = logits.argmax(-1)
            if remasking == "low_confidence":
                conf = torch.softmax(logits, -1).gather(-1, x0[..., None])[..., 0]
            else:
                conf = torch.rand(x0.shape)
            for b in range(B):
                candidates = [p for p in range(start, end) if x[b, p] == MASK]
                for p in sorted(candidates, key=lambda p: -float(conf[b, p]))[:counts[b][i]]:
                    x[b, p] = x0[b, p]
    return x


@pytest.mark.parametrize("remasking", ["low_confidence", "random"])
@pytest.mark.parametrize("temperature", [0.0, 0.7])
@pytest.mark.parametrize("gen_length,block_length,steps", [(16, 16, 16), (16, 4, 8), (24, 8, 6)])
@pytest.mark.parametrize("batch", [1, 2])
def test_parity_with_reference_llada(llama, prompts, remasking, temperature, gen_length, block_length, steps, batch):
    ids, attn = prompts[0][-batch:], prompts[1][-batch:]
    torch.manual_seed(7)
    expected = reference_llada(llama, ids, attn, gen_length, block_length, steps, temperature, remasking)
    spec = MaskedDiffusionSpec(MASK, gen_length, block_length, steps, temperature=temperature, remasking=remasking)
    torch.manual_seed(7)
    out = generate(make_denoiser(llama), spec, ids, attn)
    assert torch.equal(out.sequences, expected)
    blocks = gen_length // block_length
    assert out.nfe == steps and out.steps_per_block == [steps // blocks] * blocks
    assert (out.sequences[:, ids.shape[1]:] != MASK).all()


def test_schedule_spreads_masks_like_llada():
    block = torch.ones(2, 10, dtype=torch.bool)
    block[1, :3] = False
    assert masked.num_transfer_tokens(block, 4).tolist() == [[3, 3, 2, 2], [2, 2, 2, 1]]


def test_decoder_is_made_bidirectional(llama):
    x = torch.randint(4, VOCAB, (1, 12), generator=torch.Generator().manual_seed(3))
    y = x.clone()
    y[0, -1] = (x[0, -1] + 1) % VOCAB
    attn = torch.ones(1, 12, dtype=torch.bool)
    d = make_denoiser(llama)
    with torch.no_grad():
        changed = (d.logits(x, attn)[0, 0] - d.logits(y, attn)[0, 0]).abs().max()
        causal = (llama(x).logits[0, 0] - llama(y).logits[0, 0]).abs().max()
    assert causal == 0            # sanity: the plain causal model cannot see the later token
    assert changed > 1e-4         # our 4D mask lets position 0 see position 11


# ---- threshold (Fast-dLLM parallel decoding) ----

def _events(llama, prompts, **kw):
    events = []
    spec = MaskedDiffusionSpec(MASK, 16, 8, 16, **kw)
    out = generate(make_denoiser(llama, spec.cache), spec, *prompts, on_step=events.append)
    return out, events


def test_threshold_unmasks_at_least_one_per_step(llama, prompts):
    out, events = _events(llama, prompts, threshold=0.05)
    assert all((ev.unmasked.sum(-1) >= 1).all() for ev in events)
    assert (out.sequences[:, 8:] != MASK).all()
    assert (out.passes_per_sequence <= out.nfe).all()


def test_threshold_above_one_is_one_token_per_step(llama, prompts):
    out, events = _events(llama, prompts, threshold=1.0)
    assert all((ev.unmasked.sum(-1) == 1).all() for ev in events)
    assert out.nfe == 16 and out.steps_per_block == [8, 8]


def test_threshold_saves_passes_on_a_confident_model(prompts):
    confident = tiny_llama()
    with torch.no_grad():
        confident.lm_head.weight.mul_(20.0)
    fixed, _ = _events(confident, prompts)
    fast, events = _events(confident, prompts, threshold=0.9)
    print(f"\nconfident model: fixed schedule nfe={fixed.nfe}, threshold 0.9 nfe={fast.nfe}")
    assert fixed.nfe == 16 and fast.nfe < fixed.nfe
    assert max(int(ev.unmasked.sum(-1).max()) for ev in events) > 1


# ---- Dream's confidence scores ----

class FixedLogits:
    """A denoiser that always predicts the same distributions over the answer."""

    def __init__(self, probs):
        self.probs = torch.tensor(probs)                     # (G, 4) over tokens 0..3; id 4 is the mask

    def logits(self, x, attention_mask):
        B, T = x.shape
        out = torch.full((B, T, 5), -30.0)
        out[:, T - len(self.probs):, :4] = torch.log(self.probs.clamp_min(1e-12))
        return out


@pytest.mark.parametrize("remasking,first", [("topk_margin", 1), ("entropy", 0), ("low_confidence", 0)])
def test_confidence_strategies_pick_by_definition(remasking, first):
    # Position 0: [.5, .5, 0, 0]: margin 0, entropy ln 2 = 0.69, top prob .5.
    # Position 1: [.4, .2, .2, .2]: margin .2, entropy 1.33, top prob .4.
    probs = [[0.5, 0.5, 0.0, 0.0], [0.4, 0.2, 0.2, 0.2]]
    logits = torch.log(torch.tensor(probs).clamp_min(1e-12))[None]
    score = masked.confidence(remasking, logits, logits.argmax(-1))
    assert int(score[0].argmax()) == first
    events = []
    spec = MaskedDiffusionSpec(4, 2, 2, 2, remasking=remasking)
    generate(FixedLogits(probs), spec, torch.zeros(1, 3, dtype=torch.long), on_step=events.append)
    assert events[0].unmasked[0].nonzero().flatten().tolist() == [first]


def test_dream_scores_match_formulas():
    logits = torch.randn(2, 5, 7, generator=torch.Generator().manual_seed(0))
    p = torch.softmax(logits, -1)
    top = p.sort(-1, descending=True).values
    margin = masked.confidence("topk_margin", logits, logits.argmax(-1))
    neg_entropy = masked.confidence("entropy", logits, logits.argmax(-1))
    assert torch.allclose(margin, top[..., 0] - top[..., 1])
    assert torch.allclose(neg_entropy, (p * p.log()).sum(-1), atol=1e-6)


# ---- Fast-dLLM caches ----

def test_cache_window_reproduces_the_full_pass(llama, prompts):
    ids, attn = prompts
    x = torch.cat([ids, torch.randint(4, VOCAB, (2, 16), generator=torch.Generator().manual_seed(5))], 1)
    attn = torch.nn.functional.pad(attn, (0, 16), value=True)
    d = make_denoiser(llama, "dual")
    with torch.no_grad():
        full = d.logits(x, attn)
        assert torch.allclose(d.prefill(x, attn), full, atol=1e-5)
        for lo, hi in [(8, 16), (16, 24), (8, 24)]:         # dual spans and a prefix span (to the end)
            assert torch.allclose(d.window(x[:, lo:hi], attn, lo, hi), full[:, lo:hi], atol=1e-5)


def _run(model, prompts, cache, **kw):
    spec = MaskedDiffusionSpec(MASK, kw.pop("gen_length", 32), kw.pop("block_length", 8), kw.pop("steps", 32),
                               cache=cache, **kw)
    events = []
    torch.manual_seed(11)
    out = generate(make_denoiser(model, cache), spec, *prompts, on_step=events.append)
    return out, events


def test_cache_modes_agreement_and_invariants(llama, prompts):
    base, base_events = _run(llama, prompts, "none")
    rates = {}
    for cache in ("prefix", "dual"):
        out, events = _run(llama, prompts, cache)
        rates[cache] = float((out.sequences[:, 8:] == base.sequences[:, 8:]).float().mean())
        assert 0.0 <= rates[cache] <= 1.0
        assert out.nfe == base.nfe == 32 and out.steps_per_block == base.steps_per_block
        assert (out.sequences[:, 8:] != MASK).all()
        # Every block starts with an exact full pass: the first step is the same as without a cache.
        assert torch.equal(events[0].unmasked, base_events[0].unmasked)
        assert torch.equal(events[0].tokens, base_events[0].tokens)
    print(f"\ncache agreement with no-cache (gen 32, block 8, 32 steps, greedy, batch 2): "
          f"prefix={rates['prefix']:.3f} dual={rates['dual']:.3f}")


def test_cache_is_exact_with_one_step_per_block(llama, prompts):
    # With one step per block every step is a block-start full pass: nothing is ever stale.
    base, _ = _run(llama, prompts, "none", steps=4)
    for cache in ("prefix", "dual"):
        assert torch.equal(_run(llama, prompts, cache, steps=4)[0].sequences, base.sequences)


def test_dual_equals_prefix_with_one_block(llama, prompts):
    # block_length == gen_length: nothing follows the block, so both caches recompute the same positions.
    prefix, _ = _run(llama, prompts, "prefix", block_length=32)
    dual, _ = _run(llama, prompts, "dual", block_length=32)
    assert torch.equal(prefix.sequences, dual.sequences)


def test_masked_lm_runs_without_cache_and_refuses_cache(prompts):
    bert = tiny_bert()
    out, _ = _run(bert, prompts, "none", gen_length=16, block_length=8, steps=8)
    assert out.nfe == 8 and (out.sequences[:, 8:] != MASK).all()
    for cache in ("prefix", "dual"):
        with pytest.raises(ConfigError, match="BertForMaskedLM"):
            make_denoiser(bert, cache)


# ---- loader ----

def test_loader_round_trip_offline(tmp_path, llama, prompts):
    llama.save_pretrained(tmp_path / "llama")
    tiny_bert().save_pretrained(tmp_path / "bert")
    loaded = load_masked_model(tmp_path / "llama")
    assert type(loaded).__name__ == "LlamaForCausalLM"
    x = torch.randint(4, VOCAB, (1, 10))
    attn = torch.ones(1, 10, dtype=torch.bool)
    with torch.no_grad():
        assert torch.equal(make_denoiser(loaded).logits(x, attn), make_denoiser(llama).logits(x, attn))
    assert type(load_masked_model(str(tmp_path / "bert"))).__name__ == "BertForMaskedLM"


def test_loader_refuses_remote_code_without_flag(tmp_path, llama):
    llama.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_llada.LLaDAModelLM"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="trust_remote_code=True") as err:
        load_masked_model(tmp_path)
    assert str(tmp_path) in str(err.value) and "\n" not in str(err.value)


def test_loader_missing_path(tmp_path):
    with pytest.raises(ConfigError, match="looked for .*config.json"):
        load_masked_model(tmp_path / "nowhere")


# ---- the engine ----

def _decoder(model, **knobs):
    engine = ENGINES["dgbench-masked"]
    spec = ModelSpec("llama-masked-test", "llama", "diffusion", "LlamaForCausalLM", LLAMA, special_tokens=TOKENS)
    return engine, engine.factory(model, spec, validate_mapping(knobs, engine.knobs, Location("test")))


def test_engine_record(llama, prompts):
    engine, decoder = _decoder(llama, steps=8, block_length=4)
    assert engine.paradigm == "diffusion" and masked_lm.MaskedDiffusionDecoder.paradigm == "diffusion"
    rec = decoder.generate(*prompts, 16, True, 3, Clock())
    assert isinstance(rec, GenerationRecord)
    assert rec.nfe == 8 and rec.nfe_per_sequence == [8, 8]
    assert rec.steps_per_canvas == [2, 2, 2, 2] and len(rec.canvas_times_s) == 4 and len(rec.step_times_s) == 8
    assert rec.first_output_s == rec.canvas_times_s[0] <= rec.e2e_s
    assert [len(t) for t in rec.tokens] == [16, 16] and rec.useful_tokens == [16, 16]
    assert rec.canvas_length == 4 and rec.step_cap == 2


def test_engine_variable_length_stops_at_eos(prompts):
    eager = tiny_llama()
    with torch.no_grad():
        eager.lm_head.weight[TOKENS["eos"]] *= 50.0   # EOS wins somewhere in the first block
    _, decoder = _decoder(eager, steps=16, block_length=4, record_trajectory=True)
    rec = decoder.generate(*prompts, 16, False, 3, Clock())
    assert rec.nfe < 16 and len(rec.steps_per_canvas) < 4
    for toks, useful in zip(rec.tokens, rec.useful_tokens):
        assert toks[useful] == TOKENS["eos"] and set(toks[useful + 1:]) <= {TOKENS["pad"]}
    assert rec.extra["trajectory"] and rec.extra["trajectory"][0]["step"] == 0


def test_engine_knobs_and_errors(llama, prompts):
    engine = ENGINES["dgbench-masked"]
    assert engine.knobs["remasking"].choices == list(masked.REMASKING)
    assert engine.knobs["cache"].choices == list(masked.CACHE_MODES)
    _, decoder = _decoder(llama, steps=5, block_length=4)
    with pytest.raises(ConfigError, match="steps 5"):
        decoder.generate(*prompts, 16, True, 0, Clock())
    _, decoder = _decoder(tiny_bert(), cache="dual")
    with pytest.raises(ConfigError, match="BertForMaskedLM"):
        decoder.generate(*prompts, 16, True, 0, Clock())
    engine, _ = _decoder(llama)
    no_mask = ModelSpec("m", "llama", "diffusion", "LlamaForCausalLM", LLAMA)
    with pytest.raises(ConfigError, match="'mask'"):
        engine.factory(llama, no_mask, validate_mapping({}, engine.knobs, Location("t"))).generate(
            *prompts, 16, True, 0, Clock())


@pytest.mark.parametrize("knobs", [{}, {"threshold": 0.9}])
def test_fill_template_keeps_the_known_positions_and_fills_only_the_blanks(llama, knobs):
    """In-place infilling (a Sudoku's givens): known ids are never masked nor changed, and only the blanks
    are unmasked, one per pass under LLaDA's default schedule of one step per masked token."""
    _, decoder = _decoder(llama, **knobs)
    template = [10, None, 11, None, None, 12, 13, None]
    ids = torch.tensor([[20, 21, 22]])
    rec = decoder.fill_template(ids, torch.ones_like(ids), template, 0, Clock())
    out = rec.tokens[0]
    assert len(out) == len(template)
    assert all(o == t for o, t in zip(out, template) if t is not None)
    assert all(o != MASK for o in out)
    assert rec.useful_tokens == [4] and rec.extra["fixed_positions"] == 4
    if not knobs:   # fixed schedule: steps default to the masked count, one token per pass
        assert rec.nfe == 4
    else:
        assert 1 <= rec.nfe <= 4
