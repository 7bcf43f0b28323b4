"""dgbench's AR loop against transformers' generate, speculative-decoding counts, infill prompts and
log-likelihood scoring, on gemma4-tiny with random weights."""

import pytest
import torch

from dgbench.backends import ENGINES
from dgbench.backends import autoregressive as _register  # noqa: F401  (until backends/__init__ imports it)
from dgbench.decoding.autoregressive import ARSamplingSpec, generate, left_pad, positions_from_mask
from dgbench.decoding.infill import FimTokens, build_infill_prompt, fim_tokens_from_special, fim_tokens_from_tokenizer
from dgbench.decoding.loglikelihood import loglikelihood
from dgbench.scenarios.generation import synthetic_prompts
from dgbench.metrics import per_rep_metrics
from dgbench.models.registry import get
from dgbench.models.synthetic import build_synthetic
from dgbench.telemetry.timing import Clock
from dgbench.validation import Location, validate_mapping

SPEC = get("gemma4-tiny")
PAD, EOS = SPEC.special_tokens["pad"], SPEC.special_tokens["eos"]


def knobs(engine: str, **over) -> dict:
    return validate_mapping(over, ENGINES[engine].knobs, Location("test"))


@pytest.fixture(scope="module")
def model():
    return build_synthetic(SPEC)


def batch(lengths, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return left_pad([torch.randint(3, 512, (n,), generator=gen).tolist() for n in lengths], PAD)


def reference(model, ids, mask, new, kind, eos=EOS, **kw):
    return model.generate(ids, attention_mask=mask, max_new_tokens=new, cache_implementation=kind,
                          pad_token_id=PAD, eos_token_id=eos, **kw)


# --- the loop ----------------------------------------------------------------------------------------

def test_positions_follow_left_padding():
    mask = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    assert positions_from_mask(mask).tolist() == [[0, 0, 0, 1], [0, 1, 2, 3]]


@pytest.mark.parametrize("kind", ["dynamic", "static"])
@pytest.mark.parametrize("lengths", [[6], [7, 3, 5]], ids=["batch1", "padded-batch3"])
def test_greedy_tokens_identical_to_transformers(model, kind, lengths):
    ids, mask = batch(lengths)
    ref = reference(model, ids, mask, 16, kind, do_sample=False)
    ours = generate(model, ARSamplingSpec(eos_token_id=EOS, pad_token_id=PAD), ids, mask, 16, cache_kind=kind)
    assert torch.equal(ours.sequences, ref)


@pytest.mark.parametrize("kind", ["dynamic", "static"])
def test_rows_stop_at_their_own_eos_and_are_padded(model, kind):
    ids, mask = batch([7, 3, 5])
    free = generate(model, ARSamplingSpec(eos_token_id=None), ids, mask, 12, cache_kind=kind)
    # Call "EOS" a token row 0 produces at step 3 and the others do not produce early: row 0 then stops
    # there while the others go on, exactly as transformers does it.
    eos = free.sequences[0, 7 + 3].item()
    spec = ARSamplingSpec(eos_token_id=eos, pad_token_id=PAD)
    ours = generate(model, spec, ids, mask, 12, cache_kind=kind)
    ref = reference(model, ids, mask, 12, kind, eos=eos, do_sample=False)
    assert torch.equal(ours.sequences, ref)
    row0 = ours.sequences[0, 7:].tolist()
    first = row0.index(eos)
    assert first <= 3 and all(t == PAD for t in row0[first + 1:])
    assert ours.passes_per_sequence[0] == first + 1 and ours.nfe == ours.sequences.shape[1] - 7


@pytest.mark.parametrize("kind", ["dynamic", "static"])
def test_sampling_identical_to_transformers_for_the_same_seed(model, kind):
    ids, mask = batch([7, 3, 5])
    for seed in range(2):
        torch.manual_seed(seed)
        ref = reference(model, ids, mask, 12, kind, do_sample=True, temperature=0.7, top_k=20, top_p=None)
        torch.manual_seed(seed)
        ours = generate(model, ARSamplingSpec(eos_token_id=EOS, do_sample=True, temperature=0.7, top_k=20),
                        ids, mask, 12, cache_kind=kind)
        assert torch.equal(ours.sequences, ref)


def test_min_new_tokens_forbids_eos(model):
    ids, mask = batch([5])
    free = generate(model, ARSamplingSpec(eos_token_id=None), ids, mask, 6)
    eos = free.sequences[0, 5 + 1].item()          # would stop at step 1
    out = generate(model, ARSamplingSpec(eos_token_id=eos, min_new_tokens=6), ids, mask, 6)
    assert out.sequences.shape[1] == 11 and eos not in out.sequences[0, 5:].tolist()


def test_spec_rejects_bad_sampling_values():
    with pytest.raises(ValueError, match="temperature"):
        ARSamplingSpec(temperature=0)
    with pytest.raises(ValueError, match="top_k"):
        ARSamplingSpec(top_k=0)


def test_compiled_static_decode_matches_eager(model):
    # The one torch.compile case (about 15-30 s on 2 CPU cores): static cache, fixed shapes.
    ids, mask = batch([4, 6])
    eager = generate(model, ARSamplingSpec(eos_token_id=None), ids, mask, 5, cache_kind="static")
    compiled = generate(model, ARSamplingSpec(eos_token_id=None), ids, mask, 5, cache_kind="static", compile=True)
    assert torch.equal(compiled.sequences, eager.sequences)


# --- the engines ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("fixed_length", [True, False])
def test_dgbench_engine_matches_hf_engine_and_times_every_token(model, fixed_length):
    ids, mask = synthetic_prompts(3, 6, 512, 3, seed=0, device="cpu")
    ours = ENGINES["dgbench-autoregressive"].factory(model, SPEC, knobs("dgbench-autoregressive", cache="static"))
    hf = ENGINES["hf-autoregressive"].factory(model, SPEC, knobs("hf-autoregressive"))
    rec = ours.generate(ids, mask, gen_length=10, fixed_length=fixed_length, seed=0, clock=Clock())
    ref = hf.generate(ids, mask, gen_length=10, fixed_length=fixed_length, seed=0, clock=Clock())
    assert rec.tokens == ref.tokens and rec.useful_tokens == ref.useful_tokens and rec.nfe == ref.nfe
    assert len(rec.token_times_s) == len(rec.tokens[0]) and rec.first_output_s == rec.token_times_s[0]
    assert rec.token_times_s == sorted(rec.token_times_s) and rec.token_times_s[-1] <= rec.e2e_s
    m = per_rep_metrics(rec, batch=3)
    assert m["tpot_s"] == pytest.approx((rec.e2e_s - rec.first_output_s) / (len(rec.tokens[0]) - 1))


def test_sampling_engines_agree(model):
    ids, mask = synthetic_prompts(2, 5, 512, 3, seed=1, device="cpu")
    k = dict(do_sample=True, temperature=0.8, top_k=30)
    ours = ENGINES["dgbench-autoregressive"].factory(model, SPEC, knobs("dgbench-autoregressive", **k))
    hf = ENGINES["hf-autoregressive"].factory(model, SPEC, knobs("hf-autoregressive", **k))
    a = ours.generate(ids, mask, gen_length=8, fixed_length=True, seed=3, clock=Clock())
    b = hf.generate(ids, mask, gen_length=8, fixed_length=True, seed=3, clock=Clock())
    assert a.tokens == b.tokens


def test_self_draft_accepts_everything(model):
    # A draft with the target's own weights (same spec, same seed) must have every greedy draft accepted:
    # this checks the counting, not the speed-up.
    ids, mask = synthetic_prompts(1, 8, 512, 3, seed=0, device="cpu")
    plain = ENGINES["hf-autoregressive"].factory(model, SPEC, knobs("hf-autoregressive"))
    spec_dec = ENGINES["hf-autoregressive"].factory(model, SPEC, knobs(
        "hf-autoregressive", assistant_model="gemma4-tiny", num_assistant_tokens=5, assistant_confidence_threshold=0.0))
    ref = plain.generate(ids, mask, gen_length=16, fixed_length=True, seed=0, clock=Clock())
    rec = spec_dec.generate(ids, mask, gen_length=16, fixed_length=True, seed=0, clock=Clock())
    assert rec.tokens == ref.tokens
    x = rec.extra
    assert x["acceptance_rate"] == 1.0 and x["draft_accepted"] == x["draft_proposed"] > 0
    # Every target forward commits its accepted drafts plus one token of its own.
    assert x["verify_steps"] == rec.nfe and 16 == rec.nfe + x["draft_accepted"]
    assert x["mean_accepted_length"] == pytest.approx(x["draft_accepted"] / x["draft_rounds"])
    assert len(rec.token_times_s) == 16 and per_rep_metrics(rec, 1)["tokens_per_forward"] == 16 / rec.nfe


def test_prompt_lookup_counts_add_up(model):
    # A prompt that repeats itself gives prompt lookup n-grams to copy; with random weights some drafts are
    # rejected. Greedy prompt lookup is lossless, and committed tokens = target forwards + accepted drafts.
    ids = torch.tensor([[5, 6, 7, 8, 9, 5, 6, 7, 8, 9, 5, 6, 7]])
    mask = torch.ones_like(ids)
    plain = ENGINES["hf-autoregressive"].factory(model, SPEC, knobs("hf-autoregressive"))
    lookup = ENGINES["hf-autoregressive"].factory(model, SPEC, knobs("hf-autoregressive", prompt_lookup_num_tokens=3))
    ref = plain.generate(ids, mask, gen_length=20, fixed_length=True, seed=0, clock=Clock())
    rec = lookup.generate(ids, mask, gen_length=20, fixed_length=True, seed=0, clock=Clock())
    x = rec.extra
    assert rec.tokens == ref.tokens and x["draft_proposed"] > 0
    assert 0 <= x["draft_accepted"] <= x["draft_proposed"]
    assert 20 == x["verify_steps"] + x["draft_accepted"] and x["verify_steps"] == rec.nfe


def test_speculative_knobs_are_checked(model):
    with pytest.raises(Exception, match="not both"):
        ENGINES["hf-autoregressive"].factory(model, SPEC, knobs("hf-autoregressive", assistant_model="gemma4-tiny",
                                                                prompt_lookup_num_tokens=2))
    with pytest.raises(Exception, match="dynamic"):
        ENGINES["hf-autoregressive"].factory(model, SPEC, knobs("hf-autoregressive", prompt_lookup_num_tokens=2,
                                                                cache_implementation="static"))
    with pytest.raises(Exception, match="vocabulary"):
        ENGINES["hf-autoregressive"].factory(model, SPEC, knobs("hf-autoregressive", assistant_model="gemma4-small"))
    with pytest.raises(Exception, match="unknown value"):
        knobs("hf-autoregressive", assistant_model="gemma4-tinny")


# --- infill ----------------------------------------------------------------------------------------------

def test_infill_layouts():
    fim = FimTokens(prefix_id=90, suffix_id=91, middle_id=92)
    p = build_infill_prompt([10, 11], [20, 21], fim, bos_token_id=2)
    assert p.ids == [2, 90, 10, 11, 91, 20, 21, 92] and p.mode == "fim-psm"
    p = build_infill_prompt([10, 11], [20, 21], None, separator=[7])
    assert p.ids == [20, 21, 7, 10, 11] and p.mode == "suffix-first"
    assert build_infill_prompt([10, 11], [], None).mode == "prefix-only"
    p = build_infill_prompt([10, 11], [20], fim, use_suffix=False)
    assert p.ids == [10, 11] and p.mode == "prefix-only"


def test_fim_sentinels_from_spec_and_tokenizer():
    assert fim_tokens_from_special({"pad": 0, "eos": 1}) is None
    assert fim_tokens_from_special({"fim_prefix": 5, "fim_suffix": 6, "fim_middle": 7}) == FimTokens(5, 6, 7)

    class Tok:
        def get_vocab(self):
            return {"a": 0, "<fim_prefix>": 3, "<fim_suffix>": 4, "<fim_middle>": 5}

    assert fim_tokens_from_tokenizer(Tok()) == FimTokens(3, 4, 5)


def test_engine_infill_records_its_mode(model):
    dec = ENGINES["dgbench-autoregressive"].factory(model, SPEC, knobs("dgbench-autoregressive"))
    rec = dec.infill([[10, 11, 12], [13]], [[20, 21], [22, 23, 24]], gen_length=4, fixed_length=True, seed=0,
                     clock=Clock())
    assert rec.extra["infill_mode"] == "suffix-first" and len(rec.tokens) == 2  # gemma4-tiny has no FIM sentinels


# --- log-likelihood ----------------------------------------------------------------------------------------

def test_loglikelihood_batched_equals_one_by_one_and_manual(model):
    gen = torch.Generator().manual_seed(0)
    reqs = [(torch.randint(3, 512, (c,), generator=gen).tolist(), torch.randint(3, 512, (n,), generator=gen).tolist())
            for c, n in [(5, 3), (2, 1), (9, 4), (3, 6)]]
    batched = loglikelihood(model, reqs, pad_token_id=PAD, batch_size=4)
    single = [loglikelihood(model, [r], pad_token_id=PAD, batch_size=1)[0] for r in reqs]
    for (a, ga), (b, gb) in zip(batched, single):
        assert a == pytest.approx(b, abs=1e-5) and ga == gb
    # By hand: one forward of the whole sequence, log_softmax, gather the continuation.
    for (ctx, cont), (score, greedy) in zip(reqs, batched):
        whole = torch.tensor([ctx + cont])
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=whole).logits[0].float(), dim=-1)
        rows = logp[len(ctx) - 1:len(ctx) + len(cont) - 1]
        assert score == pytest.approx(rows[torch.arange(len(cont)), cont].sum().item(), abs=1e-5)
        assert greedy == bool((rows.argmax(-1) == torch.tensor(cont)).all())


def test_loglikelihood_greedy_continuation_is_flagged(model):
    ctx = [5, 6, 7, 8]
    out = generate(model, ARSamplingSpec(eos_token_id=None), torch.tensor([ctx]), None, 3)
    cont = out.sequences[0, 4:].tolist()
    (score, greedy), (_, other) = loglikelihood(model, [(ctx, cont), (ctx, [cont[0] + 1, *cont[1:]])])
    assert greedy and not other and score < 0
