"""Measured ceilings of this machine: matmul FLOP/s (fp32, bf16), copy bandwidth, and a per-forward floor.

A CPU has no datasheet roofline worth trusting (cores, clocks, vector units and the memory channels a
container gets all vary), so a CPU without a profile of its own gets a measured one, cached under
~/.cache/dgbench (key: CPU model + torch threads) and labelled "measured". The per-forward floor is
measured again in every run (see floor_for). The same measurements on a
GPU are what `dgbench profile` sets beside the published numbers.

Each figure is the best of n timed runs (a ceiling is what the machine can do, so the best run is the
estimate), stored with n, median and p10/p90 so its spread is visible.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from dgbench.stats import summarize


def cache_dir() -> Path:
    return Path(os.environ.get("DGBENCH_CACHE_DIR") or Path.home() / ".cache" / "dgbench")


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


def _timed(fn, device: str, reps: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return times


def _ceiling(work: float, times: list[float], unit: str) -> dict:
    rates = [work / t for t in times]
    s = summarize(rates)
    return {"value": max(rates), "unit": unit, "n": s["n"], "median": s["median"], "p10": s["p10"], "p90": s["p90"]}


def matmul_flops(dtype: str = "float32", device: str = "cpu", n: int | None = None, reps: int = 7) -> dict:
    """Square n x n matmuls: 2 n^3 FLOPs each. n = 1024 on CPU (about 2 GFLOP: long enough to time,
    short enough to repeat), 8192 on GPU (large enough to fill the tensor cores)."""
    import torch

    n = n or (8192 if device.startswith("cuda") else 1024)
    dt = getattr(torch, dtype)
    a = torch.randn(n, n, device=device).to(dt)
    b = torch.randn(n, n, device=device).to(dt)
    out = torch.empty(n, n, device=device, dtype=dt)
    with torch.no_grad():
        times = _timed(lambda: torch.mm(a, b, out=out), device, reps)
    return {**_ceiling(2.0 * n**3, times, "FLOP/s"), "method": f"torch.mm {n}x{n} {dtype}, best of {reps}"}


def copy_bandwidth(device: str = "cpu", mbytes: int | None = None, reps: int = 7) -> dict:
    """A large tensor copy (well beyond the caches): bytes read + bytes written per second, as STREAM's
    copy kernel counts them (McCalpin)."""
    import torch

    mbytes = mbytes or (2048 if device.startswith("cuda") else 256)
    n = mbytes * 2**20 // 4
    src = torch.ones(n, device=device)
    dst = torch.empty_like(src)
    times = _timed(lambda: dst.copy_(src), device, reps)
    return {**_ceiling(2.0 * n * 4, times, "B/s"), "method": f"tensor copy of {mbytes} MiB float32, best of {reps}"}


# ---------------------------------------------------------------- per-forward floor

def _twin(spec):
    """The spec's layer stack at its real widths with a 512-token vocabulary: the same depth, layer
    pattern, widths, experts and top-k, so one forward of it costs what the model's stack costs in
    dispatch and per-op overhead, while the embedding and LM head (the roofline counts those) shrink to
    nothing. DiffusionGemma's denoiser is a Gemma 4 text stack, so its twin is the causal Gemma 4 of
    that shape."""
    from dgbench.models.registry import ModelSpec

    c = dict(spec.text_config)
    arch = "Gemma4ForCausalLM" if spec.architecture == "DiffusionGemmaForBlockDiffusion" else spec.architecture
    c["vocab_size"] = 512
    return ModelSpec(f"{spec.name}-floor-twin", spec.family, "autoregressive", arch, c,
                     special_tokens={"pad": 0, "eos": 1, "bos": 2})


def twin_key(spec) -> str:
    """Specs whose twins are the same stack (DiffusionGemma and Gemma 4 of one shape) share a floor."""
    c = spec.text_config
    return (f"{_twin(spec).architecture}/L{c['num_hidden_layers']}/H{c['hidden_size']}/I{c['intermediate_size']}"
            f"/E{c.get('num_experts') or 0}/k{c.get('top_k_experts') or 0}")


FLOOR_TOKENS = (1,)
FLOOR_MAX_PARAMS = 200e6   # a floor twin bigger than this is not built (a full-size model on a CPU is not run)


def forward_floor(spec, device: str = "cpu", reps: int = 9, tokens=FLOOR_TOKENS) -> dict:
    """Time of a one-token forward (batch 1, no cache) of the spec's layer-stack twin: the fixed cost of a
    forward (dispatch of every operator of every layer) before its arithmetic and traffic grow with the
    tokens it carries, which the roofline counts. Best of `reps` after warmup."""
    import torch

    from dgbench.hardware.roofline import geometry
    from dgbench.models.synthetic import build_synthetic

    g = geometry(spec)
    stack = sum(shared + g.experts * expert for shared, expert in map(g.layer_params, g.layers))
    if stack > FLOOR_MAX_PARAMS:
        return {"points": [[1, 0.0]], "spread": [], "unit": "s", "sampler": sampler_cost(device),
                "method": f"not measured: a {stack / 1e9:.1f}B-parameter stack is not built on a CPU (floor 0)"}
    model = build_synthetic(_twin(spec), device=device, dtype="float32")
    points, spread = [], []
    with torch.no_grad():
        for n in tokens:
            ids = torch.randint(5, 500, (1, n), generator=torch.Generator().manual_seed(n)).to(device)
            times = _timed(lambda: model(input_ids=ids, use_cache=False), device, reps, warmup=2)
            s = summarize(times)
            points.append([n, min(times)])
            spread.append({"tokens": n, "n": s["n"], "median": s["median"], "p10": s["p10"], "p90": s["p90"]})
    return {"points": points, "spread": spread, "unit": "s",
            "method": f"forward of the layer stack with a 512-token vocabulary ({twin_key(spec)}) at {list(tokens)} "
                      f"token(s), best of {reps}",
            "sampler": sampler_cost(device)}


GEMM_TOKENS = (1, 16, 64, 256)


def gemm_roof(spec, device: str = "cpu", tokens=GEMM_TOKENS, reps: int = 9) -> dict:
    """Matmul FLOP/s at the spec's own GEMM shape, (tokens x hidden) @ (hidden x intermediate), float32,
    per token count. A CPU reaches its large-matmul peak only on large matrices; a forward over 1-256
    tokens of a narrow model runs far below it, and that lower roof is the one the model can touch."""
    import torch

    c = spec.text_config
    H, inter = c["hidden_size"], c["intermediate_size"]
    w = torch.randn(H, inter, device=device)
    points = []
    with torch.no_grad():
        for n in tokens:
            x = torch.randn(n, H, device=device)
            times = _timed(lambda: torch.mm(x, w), device, reps)
            points.append([n, 2.0 * n * H * inter / min(times)])
    return {"points": points, "unit": "FLOP/s",
            "method": f"torch.mm (n x {H}) @ ({H} x {inter}) float32 at n in {list(tokens)}, best of {reps}"}


def sampler_cost(device: str = "cpu", rows: int = 64, vocab: int = 4096, reps: int = 9) -> dict:
    """Seconds per logit element of what a sampler does with every logit of a step: temperature scaling,
    log-normalisation and softmax, the entropy (clamp, product, sum), a categorical draw (Gumbel noise:
    exponential_, a random number per element, on a CPU far slower than the memory traffic it implies)
    and an argmax, on a (rows, vocab) float32 tensor. Best of `reps`. The roofline charges it per logit
    element on measured profiles (on a GPU these passes are part of the counted bytes)."""
    import torch

    x = torch.randn(rows, vocab, device=device)
    noise = torch.empty_like(x)

    def chain():
        t = x / 0.7
        normalized = t - t.logsumexp(-1, keepdim=True)
        p = normalized.softmax(-1)
        (-(normalized.clamp(min=-1e30) * p).sum(-1)).max()
        (p / noise.exponential_()).argmax(-1)
        t.argmax(-1)

    with torch.no_grad():
        times = _timed(chain, device, reps)
    s = summarize([t / x.numel() for t in times])
    return {"value": min(times) / x.numel(), "unit": "s per logit element", "n": s["n"], "median": s["median"],
            "p10": s["p10"], "p90": s["p90"],
            "method": f"temperature, logsumexp, softmax, entropy, exponential_ draw, 2 argmax on ({rows}, {vocab}) "
                      f"float32, best of {reps}"}


def floor_at(floor: dict, tokens: int) -> float:
    """The floor for a forward of `tokens` query tokens (batch x tokens): linear between measured counts,
    the slope of the last two beyond them."""
    pts = floor["points"]
    if tokens <= pts[0][0] or len(pts) == 1:
        return pts[0][1]
    for (n0, t0), (n1, t1) in zip(pts, pts[1:]):
        if tokens <= n1:
            return t0 + (t1 - t0) * (tokens - n0) / (n1 - n0)
    (n0, t0), (n1, t1) = pts[-2], pts[-1]
    return max(t1, t1 + (t1 - t0) * (tokens - n1) / (n1 - n0))


# ---------------------------------------------------------------- the cached measured profile

def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:80]


def measured_key(device: str = "cpu") -> dict:
    import torch

    from dgbench.hardware.detect import cpu_model

    if device.startswith("cuda"):
        return {"device": torch.cuda.get_device_name(device), "torch": torch.__version__}
    return {"cpu_model": cpu_model(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__}


def _cache_path(key: dict) -> Path:
    name = key.get("cpu_model") or key.get("device")
    threads = f"-t{key['torch_threads']}" if "torch_threads" in key else ""
    return cache_dir() / f"measured-{_slug(name)}{threads}.json"


def measured_profile(device: str = "cpu", remeasure: bool = False) -> dict:
    """This machine's measured ceilings as a profile (cached; `remeasure` forces new measurements)."""
    key = measured_key(device)
    path = _cache_path(key)
    if not remeasure and path.is_file():
        try:
            data = json.loads(path.read_text())
            if data.get("key") == key:
                return data
        except (OSError, json.JSONDecodeError):
            pass
    fp32 = matmul_flops("float32", device)
    bf16 = matmul_flops("bfloat16", device)
    bw = copy_bandwidth(device)
    label = key.get("cpu_model") or key.get("device")
    data = {
        "name": f"measured:{label}" + (f" x{key['torch_threads']} threads" if "torch_threads" in key else ""),
        "kind": "gpu" if device.startswith("cuda") else "cpu",
        "profile_kind": "measured",
        "key": key,
        "peak_flops": {"fp32": fp32["value"], "bf16": bf16["value"]},
        "memory_bandwidth_bytes_s": bw["value"],
        "measurements": {"fp32": fp32, "bf16": bf16, "copy": bw},
        "measured_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "file": str(path),
    }
    _save(path, data)
    return data


def floor_for(profile: dict, spec, device: str = "cpu"):
    """The per-forward floor of `spec` on this machine as a function (tokens in the forward, logit elements
    it samples from) -> seconds: the twin's dispatch floor at that token count plus the sampler's cost per
    logit element. Measured once per architecture shape per run and kept in the run's copy of the profile
    (run.json), never in the cache: these costs swing with the machine's load far more than matmul peaks
    do, so they are measured under the run's own conditions."""
    key = twin_key(spec)
    floors = profile.setdefault("floors", {})
    if key not in floors:
        floors[key] = forward_floor(spec, device)
    per_logit = floors[key]["sampler"]["value"]
    return lambda tokens, logits: floor_at(floors[key], tokens) + logits * per_logit


def gemm_roof_for(profile: dict, spec, device: str = "cpu"):
    """FLOP/s roof as a function of the forward's tokens, from this run's measurement at the spec's GEMM
    shape (interpolated; the largest measured count holds beyond it), never above the profile's peak.
    Kept in the run's copy of the profile, like the floors."""
    key = f"{spec.text_config['hidden_size']}x{spec.text_config['intermediate_size']}"
    roofs = profile.setdefault("gemm_roofs", {})
    if key not in roofs:
        roofs[key] = gemm_roof(spec, device)
    pts = roofs[key]["points"]
    peak = profile["peak_flops"]["fp32"]

    def roof(tokens: int) -> float:
        return min(peak, floor_at({"points": pts}, tokens) if tokens < pts[-1][0] else pts[-1][1])
    return roof


def _save(path: Path, data: dict) -> None:
    from dgbench.results import atomic_write_json  # a unique temp name: two processes may measure at once

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, data)


def published_vs_measured(profile: dict, measured: dict) -> list[tuple[str, float | None, float]]:
    """(what, published, measured) rows for `dgbench profile`."""
    rows = []
    for dt in ("fp32", "bf16"):
        rows.append((f"matmul {dt} FLOP/s", (profile.get("peak_flops") or {}).get(dt), measured["peak_flops"][dt]))
    rows.append(("memory bandwidth B/s", profile.get("memory_bandwidth_bytes_s"), measured["memory_bandwidth_bytes_s"]))
    return rows

