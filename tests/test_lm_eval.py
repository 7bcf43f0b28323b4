"""dgbench's decoders as lm-eval models: lm-eval's own simple_evaluate against dgbench's own scoring of the
same items, the ELBO estimator, stop sequences, rolling log-likelihood, run directories, suite entries."""

import dataclasses
import json
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from dgbench.models.registry import SPECS, get, register  # noqa: E402

# The embedded reference pair that dgbench trains itself (dgbench/_data/models): the same backbone and
# byte-level vocabulary, one masked-diffusion and one causal model.
DIFFUSION_MODEL, AR_MODEL = "ref-diffusion", "ref-ar"

LIMIT = 4
MASKED_KNOBS = {"steps": 8}


def _decoder(name, knobs=None):
    from dgbench.backends import ENGINES
    from dgbench.models.cache import ModelCache
    from dgbench.integrations.lm_eval import DgbenchARLM, DgbenchDiffusionLM
    from dgbench.validation import Location, validate_mapping

    spec = get(name)
    cls = DgbenchDiffusionLM if spec.paradigm == "diffusion" else DgbenchARLM
    engine = ENGINES[cls.default_engine(spec)]
    knobs = validate_mapping(knobs or {}, engine.knobs, Location("test"))
    return spec, cls, engine.factory(ModelCache().get(spec, "cpu", "float32"), spec, knobs), knobs


@pytest.fixture(scope="module")
def manager():
    from lm_eval.tasks import TaskManager

    from dgbench.integrations.lm_eval_tasks import task_dir

    return TaskManager(include_path=str(task_dir()), include_defaults=False)


@pytest.fixture(scope="module", params=[AR_MODEL, DIFFUSION_MODEL])
def evaluated(request, manager):
    """lm-eval's simple_evaluate on the local MC (log-likelihood) and generation tasks, batch 4."""
    from lm_eval import simple_evaluate

    spec, cls, decoder, knobs = _decoder(request.param, MASKED_KNOBS if request.param == DIFFUSION_MODEL else {})
    lm = cls(model=spec.name, decoder=decoder, batch_size=4, mc_samples=8, progress=False, **knobs)
    results = simple_evaluate(model=lm, tasks=["dgbench_mc", "dgbench_mc_gen"], task_manager=manager, limit=LIMIT,
                              log_samples=True, verbosity="ERROR")
    return spec, decoder, lm, results


def _own_scoring(decoder, spec, scoring):
    """dgbench's quality scenario on the same procedural items (scenarios/quality.py), batch 1."""
    from dgbench.scenarios.quality import run_quality_point
    from dgbench.harness.sweep import Point

    point = Point(decoder="d", model=spec.name, engine="e", dtype="float32", batch_size=1, gen_length=16,
                  prompt_length=0, knobs={}, swept_knobs=(), task="mc", limit=LIMIT,
                  task_config={"source": "procedural", "path": None, "style": "zero_shot", "scoring": scoring,
                               "n": 50})
    samples = []
    record = run_quality_point(decoder, point, spec, "cpu", {"warmup": 0}, 0, on_sample=samples.append)
    return record, samples


def test_generation_task_matches_dgbench_scoring(evaluated):
    spec, decoder, lm, results = evaluated
    record, own = _own_scoring(decoder, spec, "generation")
    logged = sorted(results["samples"]["dgbench_mc_gen"], key=lambda s: s["doc_id"])
    # The same prompts, the same generations (lm-eval batched by 4, dgbench one at a time), the same letters.
    assert [s["doc"]["prompt"] for s in logged] == [s["prompt"] for s in own]
    assert [s["resps"][0][0] for s in logged] == [s["output"] for s in own]
    assert [s["filtered_resps"][0] for s in logged] == [s["extracted"] or "" for s in own]
    assert results["results"]["dgbench_mc_gen"]["exact_match,dgbench-extract"] == record["quality"]["accuracy"]
    assert {r["request_type"] for r in lm.records} >= {"generate_until"}


def test_multiple_choice_matches_dgbench_scoring(evaluated):
    from dgbench.tasks import TASKS
    from dgbench.decoding.masked_elbo import elbo_loglikelihood
    from dgbench.tasks.text import encode

    spec, decoder, lm, results = evaluated
    logged = sorted(results["samples"]["dgbench_mc"], key=lambda s: s["doc_id"])
    lm_eval_logprobs = [[r[0][0] for r in s["resps"]] for s in logged]
    items = TASKS["mc"].items({"source": "procedural", "path": None, "style": "zero_shot",
                               "scoring": "loglikelihood", "n": 50}, LIMIT, 0, spec.paradigm)
    if spec.paradigm == "autoregressive":
        # dgbench's own log-likelihood scoring: the same logprobs, the same choices, the same accuracy.
        record, own = _own_scoring(decoder, spec, "loglikelihood")
        for mine, theirs in zip(lm_eval_logprobs, [s["logprobs"] for s in own]):
            assert mine == pytest.approx(theirs, abs=2e-4)
        assert results["results"]["dgbench_mc"]["acc,none"] == record["quality"]["accuracy"]
    else:
        # dgbench refuses diffusion log-likelihood in its quality scenario; the relation is the ELBO itself,
        # computed here on dgbench's own encodings of its items: lm-eval's numbers are exactly those estimates.
        from dgbench.backends.masked_lm import make_denoiser

        denoiser = make_denoiser(decoder.model)
        for item, mine in zip(items, lm_eval_logprobs):
            context, continuations, _ = item.ll
            pairs = [(encode(context, spec), encode(c, spec)) for c in continuations]
            direct = [e.estimate for e in elbo_loglikelihood(denoiser.logits, pairs, spec.special_tokens["mask"],
                                                             spec.special_tokens["pad"], samples=8, seed=0)]
            assert mine == pytest.approx(direct, abs=2e-4)
        assert "ELBO" in results["config"]["dgbench"]["loglikelihood"]
    right = [it.ll[2] for it in items]
    picked = [max(range(4), key=lambda i: (lps[i], -i)) for lps in lm_eval_logprobs]
    assert results["results"]["dgbench_mc"]["acc,none"] == pytest.approx(
        sum(p == r for p, r in zip(picked, right)) / LIMIT)


def test_requests_become_a_dgbench_run_directory(evaluated, tmp_path):
    from dgbench.integrations.lm_eval_records import results_table, write_run_dir
    from dgbench.results import RunStore, load_run

    spec, _, lm, results = evaluated
    run_dir = write_run_dir(results, lm.records, lm.describe(), tmp_path / "run")
    meta, points = load_run(run_dir)
    assert meta["suite"]["scenario"] == "quality"
    by_task = {p["task"]: p for p in points}
    assert set(by_task) == {"lm_eval:dgbench_mc", "lm_eval:dgbench_mc_gen"}
    gen = by_task["lm_eval:dgbench_mc_gen"]
    assert gen["quality"]["n"] == LIMIT and gen["quality"]["accuracy"] == results["results"]["dgbench_mc_gen"][
        "exact_match,dgbench-extract"]
    calls = {r["call"] for r in lm.records if r["task"] == "dgbench_mc_gen"}
    assert gen["summary"]["e2e_s"]["n"] == len(calls) == -(-LIMIT // 4)      # one repetition per batch
    assert gen["summary"]["nfe"]["median"] >= 1 and gen["summary"]["committed_tok_s"]["median"] > 0
    assert len(RunStore(run_dir).read_samples()) == 2 * LIMIT
    assert ("ELBO" in by_task["lm_eval:dgbench_mc"]["loglikelihood"]) == (spec.paradigm == "diffusion")
    assert "loglikelihood" not in gen
    table = results_table(points)
    assert "committed tok/s" in table and "dgbench_mc_gen" in table


def test_stop_sequences_cut_the_generation(evaluated):
    from lm_eval.api.instance import Instance

    spec, _, lm, _ = evaluated
    prompt = "Question: what is 2 + 2?\nAnswer:"

    def ask(until):
        req = Instance("generate_until", {}, (prompt, {"until": until, "max_gen_toks": 16}), 0, ("t", 0, 1))
        return lm.generate_until([req])[0]

    free = ask([])
    assert len(free) >= 4, free
    stop = free[2:4]
    assert ask([stop]) == free[:free.index(stop)]
    assert lm.records[-1]["answer_tokens"] <= lm.records[-1]["useful_tokens"]


def test_rolling_loglikelihood_ar_is_exact_and_windows_cover_every_token():
    import torch
    from lm_eval.api.instance import Instance

    from dgbench.tasks.text import encode

    spec, cls, decoder, knobs = _decoder(AR_MODEL)
    text = "The quick brown fox jumps over the lazy dog, twice."
    req = Instance("loglikelihood_rolling", {}, (text,), 0, ("t", 0, 1))
    whole = cls(model=spec.name, decoder=decoder, progress=False, **knobs).loglikelihood_rolling([req])[0]
    ids = [spec.special_tokens["bos"], *encode(text, spec)]
    with torch.no_grad():
        logprobs = torch.log_softmax(decoder.model(torch.tensor([ids])).logits[0, :-1].float(), dim=-1)
    assert whole == pytest.approx(float(logprobs.gather(-1, torch.tensor(ids[1:])[:, None]).sum()), abs=1e-3)
    windowed = cls(model=spec.name, decoder=decoder, max_length=16, progress=False, **knobs)
    assert windowed.loglikelihood_rolling([req])[0] < 0
    assert sum(r["scored_tokens"] for r in windowed.records) == len(encode(text, spec))
    assert len(windowed.records) > 1


def test_elbo_is_exact_for_one_token_and_stratifies_the_masked_count():
    import torch

    from dgbench.backends.masked_lm import make_denoiser
    from dgbench.decoding.masked_elbo import elbo_loglikelihood, masked_counts

    counts = masked_counts(4, 8, torch.Generator().manual_seed(1))
    assert sorted(counts) == [1, 1, 2, 2, 3, 3, 4, 4]
    spec, _, decoder, _ = _decoder(DIFFUSION_MODEL)
    denoiser = make_denoiser(decoder.model)
    mask = spec.special_tokens["mask"]
    ctx, tok = [10, 11, 12, 13], 20
    (one,) = elbo_loglikelihood(denoiser.logits, [(ctx, [tok])], mask, 0, samples=5, seed=3)
    with torch.no_grad():
        logits = denoiser.logits(torch.tensor([ctx + [mask]]), torch.ones(1, 5, dtype=torch.bool))[0, -1]
    logits[mask] = -torch.inf
    # abs 1e-4: the ELBO runs the 5 samples as one batch, the check one row; with 2 torch threads their matmuls
    # round differently (1.5e-5 apart on -14.71 here), while a sampling error would be orders larger.
    assert one.estimate == pytest.approx(float(torch.log_softmax(logits, -1)[tok]), abs=1e-4)
    assert one.std_error == 0.0
    # Longer continuations: seeded per request, so batching and order change nothing.
    pairs = [(ctx, [20, 21, 22]), (ctx[:2], [30, 31, 32, 33, 34])]
    apart = [elbo_loglikelihood(denoiser.logits, [p], mask, 0, samples=8, seed=0)[0].estimate for p in pairs]
    together = [e.estimate for e in elbo_loglikelihood(denoiser.logits, pairs[::-1], mask, 0, samples=8, seed=0)]
    assert together[::-1] == pytest.approx(apart, abs=1e-4)


def test_shipped_task_data_is_what_the_generator_writes(tmp_path):
    from dgbench.integrations.lm_eval_tasks import MC_FILE, task_dir, write_task_data

    fresh = write_task_data(tmp_path)
    assert fresh.read_bytes() == (task_dir() / "data" / MC_FILE).read_bytes()
    assert len(fresh.read_text().splitlines()) == 50


def test_gpqa_task_reads_the_users_csv_and_says_when_it_is_missing(tmp_path, manager):
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    from dgbench.errors import ConfigError
    from dgbench.integrations.lm_eval_tasks import gpqa_dataset, task_dir
    from dgbench.tasks.multiple_choice import load_gpqa_csv, procedural_items, write_gpqa_csv

    with pytest.raises(ConfigError, match="GPQA file not found: .*nowhere.csv.*Idavidrein/gpqa"):
        gpqa_dataset(gpqa_path=str(tmp_path / "nowhere.csv"))
    with pytest.raises(ConfigError, match="GPQA path not set"):
        gpqa_dataset()
    path = write_gpqa_csv(procedural_items(4, 7), tmp_path / "gpqa_diamond.csv")
    rows = gpqa_dataset(gpqa_path=str(path))["test"]
    assert [r["answer_index"] for r in rows] == [it.answer_index for it in load_gpqa_csv(path, 0)]
    spec, cls, decoder, knobs = _decoder(AR_MODEL)
    tm = TaskManager(include_path=str(task_dir()), include_defaults=False, metadata={"gpqa_path": str(path)})
    results = simple_evaluate(model=cls(model=spec.name, decoder=decoder, progress=False, **knobs),
                              tasks=["dgbench_gpqa_diamond"], task_manager=tm, verbosity="ERROR")
    assert results["n-samples"]["dgbench_gpqa_diamond"]["effective"] == 4


def test_suite_entry_expands_to_lm_eval_points_and_validates(tmp_path):
    from dgbench.errors import ConfigError
    from dgbench.harness.suite import load_suite
    from dgbench.harness.sweep import expand

    suite = load_suite("lm_eval_local")
    points = expand(suite)
    assert {p.task for p in points} == {"lm_eval:dgbench_mc_gen"} and len(points) == len(suite["decoders"])
    assert all(p.task_config["task"] == "dgbench_mc_gen" for p in points)
    with pytest.raises(ConfigError, match=r"tasks\.lm_eval: lm_eval include_path 'no_such_dir': no such folder"):
        load_suite("lm_eval_local", ["tasks.lm_eval.include_path=no_such_dir"])
    with pytest.raises(ConfigError, match="GPQA file not found"):
        load_suite("lm_eval_local", [f"tasks.lm_eval.metadata={{gpqa_path: {tmp_path}/gpqa.csv}}"])


def test_model_args_errors_are_one_line():
    from dgbench.errors import ConfigError
    from dgbench.integrations.lm_eval import DgbenchARLM, DgbenchDiffusionLM

    with pytest.raises(ConfigError, match="is autoregressive; use --model dgbench-ar"):
        DgbenchDiffusionLM(model=AR_MODEL)
    with pytest.raises(ConfigError, match="unknown engine"):
        DgbenchARLM(model=AR_MODEL, engine="dgbench-autoregresive")
    with pytest.raises(ConfigError, match="--model_args.*unknown key"):
        DgbenchARLM(model=AR_MODEL, max_denoising_steps=4)
    with pytest.raises(ConfigError, match="batch_size='auto'"):
        DgbenchARLM(model=AR_MODEL, batch_size="auto")
