"""Fast-dLLM's prefix and dual KV caches against no cache: token agreement and speed, in one process.

The caches are approximations (cached keys and values go stale as tokens are unmasked), so dgbench
reports how often they produce the same token as the exact run, over seeds and prompts, beside the time
they save. Calls are interleaved per seed.

    python benchmarks/masked_cache_fidelity.py --seeds 20
"""

from __future__ import annotations

import argparse

import torch

from dgbench.backends import ENGINES
from dgbench.scenarios.generation import synthetic_prompts
from dgbench.models.registry import get
from dgbench.models.synthetic import build_synthetic
from dgbench.stats import summarize
from dgbench.telemetry.timing import Clock
from dgbench.validation import Location, validate_mapping


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="llama-masked-tiny")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--gen", type=int, default=32)
    ap.add_argument("--block", type=int, default=8)
    ap.add_argument("--steps", type=int, default=32)
    args = ap.parse_args()
    spec = get(args.model)
    model = build_synthetic(spec)
    engine = ENGINES["dgbench-masked"]
    decoders = {mode: engine.factory(model, spec, validate_mapping(
        {"steps": args.steps, "block_length": args.block, "cache": mode}, engine.knobs, Location("bench")))
        for mode in ("none", "prefix", "dual")}
    agree = {"prefix": [], "dual": []}
    times = {mode: [] for mode in decoders}
    for seed in range(-1, args.seeds):  # seed -1 is a warmup round
        ids, mask = synthetic_prompts(2, 16, spec.text_config["vocab_size"], len(spec.special_tokens),
                                      seed=max(seed, 0), device="cpu")
        outs = {}
        for mode, dec in decoders.items():
            rec = dec.generate(ids, mask, args.gen, fixed_length=True, seed=seed, clock=Clock())
            outs[mode] = torch.tensor(rec.tokens)
            if seed >= 0:
                times[mode].append(rec.e2e_s)
        if seed >= 0:
            for mode in agree:
                agree[mode].append((outs[mode] == outs["none"]).float().mean().item())
    print(f"model={args.model} gen={args.gen} block={args.block} steps={args.steps} batch=2, "
          f"n={args.seeds} seeds (a different prompt each)")
    base = summarize(times["none"])["median"]
    for mode in ("none", "prefix", "dual"):
        t = summarize(times[mode])
        line = f"  cache={mode:6} time {t['median'] * 1e3:7.1f} ms [{t['p10'] * 1e3:.1f}-{t['p90'] * 1e3:.1f}]  " \
               f"speed-up {base / t['median']:.2f}x"
        if mode in agree:
            a = summarize(agree[mode])
            line += f"  token agreement with no cache {a['median']:.3f} [{a['p10']:.3f}-{a['p90']:.3f}]"
        print(line)


if __name__ == "__main__":
    main()
