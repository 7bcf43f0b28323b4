"""lm-eval tasks inside `dgbench run` (the lm_eval scenario): a suite's `tasks: {lm_eval: {task: NAME, include_path: DIR, limit: N}}`.

Each listed task becomes one quality point per decoder (task `lm_eval:NAME`). The point runs lm-eval's own
evaluator (`simple_evaluate`) with the decoder the runner already loaded, wrapped as a dgbench lm-eval
model, and stores lm-eval's headline metric as the point's accuracy (Wilson interval over the documents),
the decoder calls as speed repetitions, and every scored document, with its requests' decode statistics,
in samples.jsonl.
"""

from __future__ import annotations

from dgbench.errors import ConfigError
from dgbench.scenarios.base import MeasureContext, Point, Scenario, register_scenario
from dgbench.tasks.lm_eval import resolve_include_path


@register_scenario
class LmEvalScenario(Scenario):
    """Points of tasks whose Task.scenario is "lm_eval"; laid out by the quality scenario (no suite names)."""

    name = "lm_eval"
    progress_unit = "item"
    telemetry_window = "rep"

    def measure(self, decoder, point: Point, spec, ctx: MeasureContext) -> dict:
        return run_lm_eval_point(decoder, point, spec, ctx.device, ctx.measure, ctx.seed, ctx.on_rep, ctx.on_sample)


def _doc_requests(records: list[dict], doc_id) -> list[dict]:
    keep = ("request_type", "call", "batch_size", "e2e_s", "nfe", "nfe_sequence", "useful_tokens", "answer_tokens",
            "tokens_per_forward", "committed_tok_s", "logprob", "elbo_std_error")
    return [{k: r[k] for k in keep if k in r} for r in records if r.get("doc_id") == doc_id]


def run_lm_eval_point(decoder, point, spec, device: str, measure: dict, seed: int, on_item=None,
                      on_sample=None) -> dict:
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    from dgbench.integrations.lm_eval import DgbenchARLM, DgbenchDiffusionLM
    from dgbench.integrations.lm_eval_records import point_result, sample_records

    config = point.task_config
    name = config["task"]
    cls = DgbenchDiffusionLM if spec.paradigm == "diffusion" else DgbenchARLM
    lm = cls(model=spec.name, engine=point.engine, decoder=decoder, seed=seed, batch_size=config["batch_size"],
             max_gen_toks=config["max_gen_toks"], mc_samples=config["mc_samples"], progress=False,
             **point.knobs)
    for w in range(measure["warmup"]):   # untimed: first-call costs stay out of the request timings
        lm._generate([[lm._bos]], point.knobs.get("block_length") or 8, seed + 500 + w)
    include = resolve_include_path(config.get("include_path"))
    # With a task folder only that folder is indexed (seconds); lm-eval's built-in tasks need a full index.
    manager = TaskManager(include_path=str(include) if include else None, include_defaults=include is None,
                          metadata=dict(config.get("metadata") or {}))
    limits = [x for x in (config.get("limit"), point.limit) if x is not None]
    try:
        results = simple_evaluate(model=lm, tasks=[name], task_manager=manager, limit=min(limits) if limits else None,
                                  num_fewshot=config.get("num_fewshot"), log_samples=True, random_seed=seed,
                                  numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed)
    except KeyError as exc:
        raise ConfigError(f"lm_eval task {name!r} not found ({exc}); check tasks.lm_eval.task and include_path "
                          f"{config.get('include_path')!r}") from None
    samples = results.get("samples", {}).get(name)
    result = point_result(name, results, lm.records, samples)
    if on_sample:
        head = result["lm_eval_metric"]
        for k, sample in enumerate(sample_records(name, samples, point.point_id, head["name"] if head else None)):
            on_sample({"decoder": point.decoder, "model": point.model, "engine": point.engine, "index": k, **sample,
                       "requests": _doc_requests(lm.records, sample["item_id"])})
    if on_item:
        on_item(result["requests"])
    result.update(task=point.task, task_config=config, limit=point.limit, n_warmup=measure["warmup"],
                  **({"loglikelihood": lm.describe()["loglikelihood"]}
                     if any(t.startswith("loglikelihood") for t in result["request_types"]) else {}),
                  lm_eval={"version": results.get("lm_eval_version"), "config": results.get("config", {}).get("dgbench")})
    return result
