"""Roofline arithmetic, the geometry it reads from specs (checked against the parameter accounting), the
hardware profiles and their sources, and the no-torch rule for report-side imports."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from dgbench.hardware import roofline as rf
from dgbench.hardware.profiles import _check, load_profiles, match_profile
from dgbench.models.registry import SPECS, get
from dgbench.errors import ConfigError


def test_geometry_matches_parameter_accounting():
    """Weights a token multiplies + embedding (+ the self-conditioning MLP) = active parameters of the
    closed-form count, up to norms and biases (which do no matmul): within 1% for the tiny specs, where
    norms weigh most, and 0.03% at full size."""
    from dgbench.models.params import formula

    for name, spec in SPECS.items():
        if spec.architecture == "Gemma4AssistantForCausalLM":
            with pytest.raises(ValueError, match="drafter"):
                rf.geometry(spec)
            continue
        g = rf.geometry(spec)
        mine = g.active_matmul_params() + g.embedding_params + 3 * g.hidden * g.self_cond_ffn
        theirs = formula(spec).active
        tolerance = 3e-4 if g.hidden >= 2048 else 1e-2
        assert mine <= theirs and (theirs - mine) / theirs < tolerance, name


def test_attention_pairs_and_expert_coverage():
    for a, q, cap in [(0, 10, None), (0, 10, 4), (5, 3, 4), (3, 6, 6), (1000, 1, 1024), (0, 3000, 1024)]:
        brute = sum(min(j, cap) if cap else j for j in range(a + 1, a + q + 1))
        assert rf._sum_min(a, q, cap) == brute
    g = rf.geometry(get("diffusiongemma-26b-a4b"))
    total_experts = sum(g.layer_params(layer)[1] for layer in g.layers) * g.experts
    # One AR token reads its top-8 experts; a 256-token canvas touches almost all 128 of every layer.
    _, ar_bytes = rf.forward_cost(g, rf.Forward("decode", 1, 100, True, 1), 1, 2, 2)
    _, canvas_bytes = rf.forward_cost(g, rf.Forward("denoise", 256, 100, False, 256, True), 1, 2, 2)
    dense = (g.active_matmul_params() - g.top_k * total_experts / g.experts) * 2
    assert ar_bytes == pytest.approx(dense + g.top_k / g.experts * total_experts * 2 + g.embedding_params * 2, rel=0.02)
    assert canvas_bytes > dense + 0.99 * total_experts * 2
    flops, _ = rf.forward_cost(g, rf.Forward("decode", 1, 0, True, 1), 4, 2, 2)
    attn_pairs = len(g.layers)   # one key per layer for the first token
    assert flops == pytest.approx(4 * 2 * (g.active_matmul_params() + g.vocab * g.hidden)
                                  + 4 * 4 * sum(g.heads * l.head_dim for l in g.layers) / attn_pairs * attn_pairs)


def test_prediction_is_the_max_of_the_two_roofs_per_forward():
    g = rf.geometry(get("gemma4-small"))
    fwds = [(rf.Forward("prefill", 512, 0, True, 1), 1.0), (rf.Forward("decode", 1, 512, True, 1), 100.0)]
    peak, bw = 1e12, 1e11
    cost = rf.call_cost(g, fwds, 1, "float32", peak, bw)
    expected = 0.0
    for f, n in fwds:
        fl, by = rf.forward_cost(g, f, 1, 4, 4)
        expected += n * max(fl / peak, by / bw)
    assert cost.predicted_s == pytest.approx(expected)
    assert cost.forwards == 101 and cost.bound == "memory"
    floored = rf.call_cost(g, fwds, 1, "float32", peak, bw, floor_s=0.001)
    assert floored.predicted_s == pytest.approx(expected + 0.101) and floored.floor_s == pytest.approx(0.101)
    # A huge prefill on a slow-compute profile is compute bound.
    assert rf.call_cost(g, [(rf.Forward("prefill", 4096, 0, True, 1), 1.0)], 8, "float32", 1e9, 1e12).bound == "compute"


def _record(spec_name, engine, gen, e2e, nfe, dtype="bfloat16", canvas=None, steps=None):
    summary = {"e2e_s": {"n": 5, "median": e2e}, "useful_tokens": {"n": 5, "median": gen},
               "nfe": {"n": 5, "median": nfe}}
    if steps is not None:
        summary["steps_per_canvas"] = {"n": 5, "mean": steps, "median": steps}
    return {"status": "ok", "engine": engine, "knobs": {}, "dtype": dtype, "canvas_length": canvas,
            "params": {"batch_size": 1, "prompt_length": 32, "gen_length": gen}, "summary": summary}


def test_point_mfu_mbu_and_projection_on_every_profile():
    profiles = load_profiles()
    h100 = {**profiles["h100-sxm"], "profile_kind": "published"}
    spec = get("diffusiongemma-26b-a4b")
    rec = _record(spec.name, "dgbench-diffusion", 256, 0.25, 16, canvas=256, steps=16)
    out = rf.evaluate_point(rec, spec, h100, profiles)
    assert out["forwards_per_call"] == 17            # encoder prefill + 16 denoising steps, one canvas
    assert out["mfu"] == pytest.approx(out["flops_per_call"] / 0.25 / 989.4e12)
    assert out["mbu"] == pytest.approx(out["bytes_per_call"] / 0.25 / 3.35e12)
    assert out["arithmetic_intensity"] == pytest.approx(out["flops_per_call"] / out["bytes_per_call"])
    assert set(out["projected"]) == set(profiles) and "upper bound" in out["projected_note"]
    assert out["projected"]["h100-sxm"]["tok_s"] == pytest.approx(256 / out["predicted_s"])
    assert out["projected"]["generic-x86-cpu"]["tok_s"] is None          # no published peaks to project on
    # More bandwidth, same compute: the memory-bound canvas steps get faster on an H200.
    assert out["projected"]["h200"]["tok_s"] > out["projected"]["h100-sxm"]["tok_s"]
    ar = rf.evaluate_point(_record("gemma4-26b-a4b", "dgbench-autoregressive", 256, 1.0, 256), get("gemma4-26b-a4b"),
                           h100, profiles)
    assert ar["forwards_per_call"] == 256 and ar["bound"] == "memory"
    spec_rec = {**_record("gemma4-small", "hf-autoregressive", 64, 1.0, 64), "knobs": {"prompt_lookup_num_tokens": 4}}
    assert "speculative" in rf.evaluate_point(spec_rec, get("gemma4-small"), h100, profiles)["skipped"]


def test_roofline_imports_no_torch():
    code = "import sys, dgbench.hardware.roofline, dgbench.hardware.profiles; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_profiles_have_a_source_for_every_number(tmp_path):
    profiles = load_profiles()
    for name in ("h100-sxm", "h100-pcie", "h200", "b200", "a100-sxm-80gb", "l4", "rtx-5090", "rtx-4090",
                 "rtx-pro-6000-blackwell", "dgx-spark", "dgx-station-gb300", "apple-m3-max", "apple-m4-max",
                 "generic-x86-cpu"):
        p = profiles[name]
        for dt, v in (p.get("peak_flops") or {}).items():
            assert v is None or f"peak_flops.{dt}" in p["sources"] or "all" in p["sources"], (name, dt)
            assert v is None or 1e11 < v < 1e17
        bw = p.get("memory_bandwidth_bytes_s")
        assert bw is None or 1e11 < bw < 1e14
    with pytest.raises(ConfigError, match="has no source"):
        _check(tmp_path / "x.yaml", {"name": "x", "peak_flops": {"bf16": 1e15}, "sources": {}})
    with pytest.raises(ConfigError, match="3.35e"):
        _check(tmp_path / "x.yaml", {"name": "x", "memory_bandwidth_bytes_s": "3.35e12", "sources": {"all": "s"}})
    names = {"NVIDIA H100 80GB HBM3": "h100-sxm", "NVIDIA H100 PCIe": "h100-pcie", "NVIDIA H200": "h200",
             "NVIDIA B200": "b200", "NVIDIA A100-SXM4-80GB": "a100-sxm-80gb", "NVIDIA L4": "l4",
             "NVIDIA GeForce RTX 4090": "rtx-4090", "NVIDIA GeForce RTX 5090": "rtx-5090",
             "NVIDIA RTX PRO 6000 Blackwell Workstation Edition": "rtx-pro-6000-blackwell",
             "NVIDIA GB10": "dgx-spark", "NVIDIA GH200 480GB": None}
    for gpu, expected in names.items():
        assert match_profile({"gpu_name": gpu}, profiles) == expected, gpu
    assert match_profile({"cpu_model": "AMD EPYC 9654"}, profiles) == "generic-x86-cpu"
    assert match_profile({"cpu_model": "Apple M4 Max"}, profiles) == "apple-m4-max"
    assert not math.isnan(profiles["h100-sxm"]["peak_flops"]["bf16"])
