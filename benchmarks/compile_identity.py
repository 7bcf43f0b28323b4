"""Which parts of the DiffusionGemma denoiser change bits under torch.compile (inductor) on this device?

The compiled engine (`dgbench-diffusion`, compile: true) is only counted at identical tokens; when its tokens
differ, this names the ops whose compiled output is not bit-identical to eager, one module at a time, on
`diffusiongemma-small` at a canvas's shape (batch 1, 64 positions). An op that differs here can flip an
entropy-bound acceptance or a Gumbel argmax downstream, after which the random streams diverge.

    python benchmarks/compile_identity.py [--device cuda]
"""

from __future__ import annotations

import argparse
import time

import torch

from dgbench.models.registry import get
from dgbench.models.synthetic import build_synthetic


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    model = build_synthetic(get("diffusiongemma-small"), device=args.device)
    layer = model.model.decoder.layers[0]
    g = torch.Generator(device=args.device).manual_seed(0)
    x = torch.randn(1, 64, 256, generator=g, device=args.device)
    logits = 20 * torch.randn(1, 64, 4096, generator=g, device=args.device)
    flat = x.view(-1, 256)
    _, weights, index = layer.router(flat)
    cases = {
        "linear (q_proj)": (layer.self_attn.q_proj, (x,)),
        "RMSNorm": (layer.input_layernorm, (x,)),
        "dense MLP (GELU-tanh)": (layer.mlp, (x,)),
        "router (norm, softmax, top-k)": (layer.router, (flat,)),
        "MoE experts": (layer.experts, (flat, index, weights)),
        "soft-cap (div, tanh, mul)": (lambda t: torch.tanh(t / 30.0) * 30.0, (logits,)),
        "softmax": (lambda t: torch.softmax(t, -1), (logits,)),
    }
    print(f"device={args.device} torch={torch.__version__}: compiled vs eager, bit for bit")
    for name, (fn, inputs) in cases.items():
        t0 = time.perf_counter()
        eager, compiled = fn(*inputs), torch.compile(fn)(*inputs)
        eager = eager[1] if isinstance(eager, tuple) else eager        # the router: its top-k weights
        compiled = compiled[1] if isinstance(compiled, tuple) else compiled
        share = (eager != compiled).float().mean().item()
        print(f"  {name:30} identical={torch.equal(eager, compiled)!s:5} differing elements {100 * share:6.2f}% "
              f"max |diff| {(eager - compiled).abs().max().item():.3g}  ({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
