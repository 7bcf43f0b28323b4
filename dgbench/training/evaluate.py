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
}


def spec_for(objective: str, name: str | None = None, weights: str = "in-memory"):
    from dgbench.models.registry import ModelSpec
    from dgbench.training.backbone import SPECIAL_TOKENS, TEXT_CONFIG

    return ModelSpec(name or f"trained-{objective}", "llama", objective, "LlamaForCausalLM", dict(TEXT_CONFIG),
                     weights=weights, special_tokens=dict(SPECIAL_TOKENS))


def make_decoder(model, objective: str, knobs: dict | None = None, spec=None):
    from dgbench.backends import ENGINES
    from dgbench.validation import Location, validate_mapping

    engine_name, default_knobs = DECODING[objective]
    engine = ENGINES[engine_name]
    # Every knob filled as suite validation fills it (defaults; a knob without one stays absent), then
    # the reference settings.
    filled = validate_mapping({**default_knobs, **(knobs or {})}, engine.knobs, Location(engine_name), (engine_name,))
    return engine.factory(model, spec or spec_for(objective), filled)


def evaluate(model, objective: str, tasks, n: int, knobs: dict | None = None, batch_size: int = 50,
             seed: int = 0) -> dict:
    """{task: {n, correct, accuracy, low, high, outputs}} over the first n held-out items of each task."""
    import torch

    from dgbench.stats import wilson_interval
    from dgbench.tasks.text import decode, encode_template
    from dgbench.telemetry.timing import Clock
    from dgbench.training.data import GEN_LENGTH, heldout_items
    from dgbench.training.objectives import encode

    decoder = make_decoder(model, objective, knobs)
    spec = decoder.spec
    results = {}
    for task in tasks:
        items = heldout_items(task, n)
        by_length = defaultdict(list)
        for k, item in enumerate(items):
            by_length[len(encode(item.prompt))].append(k)
        outputs: list[str | None] = [None] * len(items)
        if objective == "diffusion" and items and items[0].template is not None:
            # In place, one item per call, exactly as `dgbench run --suite quality` decodes it.
            for k, item in enumerate(items):
                ids = torch.tensor([encode(item.prompt)], dtype=torch.long)
                template = encode_template(item.template, item.blanks, spec)
                rec = decoder.fill_template(ids, torch.ones_like(ids), template, seed, Clock("cpu"))
                outputs[k] = decode(rec.tokens[0], spec)
            by_length = {}
        for group in by_length.values():
            for lo in range(0, len(group), batch_size):
                chunk = group[lo:lo + batch_size]
                ids = torch.tensor([encode(items[k].prompt) for k in chunk], dtype=torch.long)
                rec = decoder.generate(ids, torch.ones_like(ids), GEN_LENGTH[task], False, seed, Clock("cpu"))
                for k, tokens in zip(chunk, rec.tokens):
                    outputs[k] = decode(tokens, spec)
        correct = [bool(item.score(text)[1]) for item, text in zip(items, outputs)]
        k = sum(correct)
        low, high = wilson_interval(k, len(items))
        results[task] = {"n": len(items), "correct": k, "accuracy": k / len(items) if items else 0.0,
                         "low": low, "high": high, "outputs": outputs}
    return results
