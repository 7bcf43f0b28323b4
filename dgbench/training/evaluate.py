"""Held-out accuracy through the real decoding engines and the tasks' own scorers.

Each item is decoded the way `dgbench run --suite quality` decodes it: the diffusion model by the
`dgbench-masked` engine filling GEN_LENGTH[task] masked positions after the prompt, the AR model by the
`dgbench-autoregressive` engine (greedy), both stopping at EOS; the output goes through the byte codec
and the task's scorer. Items with prompts of equal length are decoded together (no padding, so every
position id is what a batch-1 call would use); accuracy comes with its 95% Wilson interval.
"""

from __future__ import annotations

from collections import defaultdict

# The decoding the reference pair is evaluated and benchmarked with; suites/quality.yaml repeats these
# knobs (tests/test_training.py checks they agree). Diffusion: Fast-dLLM's confidence threshold (every
# position above 0.9 is committed at once, at least one per step), low-confidence ordering as LLaDA.
DECODING = {
    "diffusion": ("dgbench-masked", {"remasking": "low_confidence", "threshold": 0.9}),
    "autoregressive": ("dgbench-autoregressive", {}),
    # DiffusionGemma's own sampler at its defaults (entropy bound 0.1, temperatures 0.8 -> 0.4, adaptive stop);
    # the step cap is the knob's default 48.
    "uniform-diffusion": ("dgbench-diffusion", {}),
}


def spec_for(objective: str, name: str | None = None, weights: str = "in-memory", backbone: str = "llama"):
    from dgbench.models.registry import ModelSpec
    from dgbench.training.backbone import SPECIAL_TOKENS, TEXT_CONFIG

    if backbone == "gemma4":
        from dgbench.training import gemma_pair

        return gemma_pair.spec("autoregressive" if objective == "autoregressive" else "diffusion", name)
    return ModelSpec(name or f"trained-{objective}", "llama", objective, "LlamaForCausalLM", dict(TEXT_CONFIG),
                     weights=weights, special_tokens=dict(SPECIAL_TOKENS))


def make_decoder(model, objective: str, knobs: dict | None = None, spec=None, backbone: str = "llama"):
    from dgbench.backends import ENGINES
    from dgbench.validation import Location, validate_mapping

    engine_name, default_knobs = DECODING[objective]
    engine = ENGINES[engine_name]
    # Every knob filled as suite validation fills it (defaults; a knob without one stays absent), then
    # the reference settings.
    filled = validate_mapping({**default_knobs, **(knobs or {})}, engine.knobs, Location(engine_name), (engine_name,))
    return engine.factory(model, spec or spec_for(objective, backbone=backbone), filled)


def _summary(correct: list[bool]) -> dict:
    from dgbench.stats import wilson_interval

    k, n = sum(correct), len(correct)
    low, high = wilson_interval(k, n)
    return {"n": n, "correct": k, "accuracy": k / n if n else 0.0, "low": low, "high": high}


def _loglikelihood_choice(model, item, spec) -> bool:
    """AR multiple choice by log-likelihood, as the quality harness scores it (lm-eval's lettered way)."""
    from dgbench.decoding.loglikelihood import loglikelihood
    from dgbench.tasks.multiple_choice import LETTERS, score_by_loglikelihood
    from dgbench.tasks.text import encode

    context = encode(item.prompt + "\nAnswer:", spec)
    requests = [(context, encode(f" {letter}", spec)) for letter in LETTERS[:item.choices]]
    scores = loglikelihood(model, requests, pad_token_id=spec.special_tokens["pad"], batch_size=len(requests))
    return score_by_loglikelihood([lp for lp, _ in scores]) == item.answer_index


def evaluate(model, objective: str, tasks, n: int, knobs: dict | None = None, batch_size: int = 50,
             seed: int = 0, backbone: str = "llama") -> dict:
    """{task: {n, correct, accuracy, low, high, outputs[, groups][, loglikelihood][, steps]}} over the first n
    held-out items of each task (Sudoku v2: n per clue count, `groups` holding each count's row)."""
    import torch

    from dgbench.tasks.text import decode, encode, encode_template
    from dgbench.telemetry.timing import Clock
    from dgbench.training.data import GEN_LENGTH, heldout_items

    decoder = make_decoder(model, objective, knobs, backbone=backbone)
    spec = decoder.spec
    diffusion = objective != "autoregressive"
    results = {}
    for task in tasks:
        items = heldout_items(task, n)
        outputs: list[str | None] = [None] * len(items)
        steps: list[int] = []
        by_length = defaultdict(list)
        for k, item in enumerate(items):
            if diffusion and item.template is not None:
                # In place, one item per call, exactly as `dgbench run --suite quality` decodes it.
                ids = torch.tensor([encode(item.prompt, spec)], dtype=torch.long)
                template = encode_template(item.template, item.blanks, spec)
                rec = decoder.fill_template(ids, torch.ones_like(ids), template, seed, Clock("cpu"))
                tokens = rec.tokens[0][:item.answer_span] if item.answer_span else rec.tokens[0]
                outputs[k] = decode(tokens, spec)
                steps += list(rec.steps_per_canvas or [])
            else:
                prompt = item.ar_prompt if not diffusion and item.ar_prompt else item.prompt
                by_length[len(encode(prompt, spec))].append((k, prompt))
        # DiffusionGemma one item per call: its adaptive stop is per canvas, and steps per canvas are then
        # per item, as the quality suite (batch 1) measures them.
        per_call = 1 if objective == "uniform-diffusion" else batch_size
        for group in by_length.values():
            for lo in range(0, len(group), per_call):
                chunk = group[lo:lo + per_call]
                ids = torch.tensor([encode(p, spec) for _, p in chunk], dtype=torch.long)
                rec = decoder.generate(ids, torch.ones_like(ids), GEN_LENGTH[task], False, seed, Clock("cpu"))
                for (k, _), tokens in zip(chunk, rec.tokens):
                    outputs[k] = decode(tokens, spec)
                steps += list(rec.steps_per_canvas or [])
        correct = [bool(item.score(text)[1]) for item, text in zip(items, outputs)]
        results[task] = {**_summary(correct), "outputs": outputs, "correct_items": correct}
        groups = defaultdict(list)
        for item, ok in zip(items, correct):
            if item.group:
                groups[item.group].append(ok)
        if groups:
            results[task]["groups"] = {g: _summary(v) for g, v in groups.items()}
        if steps:
            results[task]["steps_per_canvas"] = steps
        if not diffusion and items and items[0].choices:
            with torch.no_grad():
                results[task]["loglikelihood"] = _summary([_loglikelihood_choice(model, it, spec) for it in items])
    return results
