"""The transformers seams (dgbench/compat.py) and the tested set (constraints.txt).

Both spellings of each seam are exercised here on callees of either shape, so the side that the
installed transformers does not take is still tested; the real engines then run with every warning
turned into an error, which is what a renamed keyword shows up as first (a FutureWarning)."""

import functools
import warnings

import pytest
import torch

from dgbench import compat
from dgbench import tested_set


def new_style(x, cache=None):          # transformers >= 5.24
    return "cache", cache


def old_style(x, past_key_values=None):  # transformers 5.23
    return "past_key_values", past_key_values


def deprecating(fn):
    """What transformers' @deprecate_kwarg does to a signature: functools.wraps keeps the new name."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if "past_key_values" in kwargs:
            warnings.warn("`past_key_values` is deprecated, use `cache`", FutureWarning)
            kwargs["cache"] = kwargs.pop("past_key_values")
        return fn(*args, **kwargs)
    return wrapper


class OldModule(torch.nn.Module):
    def forward(self, x, past_key_values=None):
        return past_key_values


class NewModule(torch.nn.Module):
    @deprecating
    def forward(self, x, cache=None):
        return cache


class Delegating:
    """A wrapper that forwards attributes to a module and calls it with **kwargs (as _SlowedModel does)."""

    def __init__(self, module):
        self._module = module

    def __getattr__(self, name):
        return getattr(self._module, name)

    def __call__(self, x, **kwargs):
        return self._module(x, **kwargs)


@pytest.mark.parametrize("fn, expected", [
    (new_style, "cache"), (old_style, "past_key_values"), (deprecating(new_style), "cache"),
    (OldModule(), "past_key_values"), (NewModule(), "cache"), (NewModule().forward, "cache"),
    (lambda x, **kw: None, "past_key_values"), (Delegating(NewModule()), "cache"),
])
def test_cache_keyword_follows_the_callee_signature(fn, expected):
    assert compat.cache_kwarg(fn) == expected
    marker = object()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = fn(1, **compat.cache_arg(fn, marker))
    if fn in (new_style, old_style):
        assert result == (expected, marker)
    elif isinstance(fn, (torch.nn.Module, Delegating)):
        assert result is marker


def test_installed_transformers_helpers_are_detected():
    """The real callees the engines use: their declared keyword is what compat picks."""
    import inspect

    from transformers.masking_utils import create_masks_for_generate
    from transformers.models.diffusion_gemma import modeling_diffusion_gemma as dg

    callees = [create_masks_for_generate, dg.DiffusionGemmaDecoderModel.create_diffusion_decoder_attention_mask,
               dg.DiffusionGemmaEncoderModel.create_masks_for_generate, dg.DiffusionGemmaDecoderTextLayer.forward]
    for fn in callees:
        declared = [p for p in inspect.signature(fn).parameters if p in compat.CACHE_KWARGS]
        assert declared and compat.cache_kwarg(fn) == declared[0], fn


@pytest.mark.parametrize("engine, model", [("dgbench-diffusion", "diffusiongemma-tiny"),
                                           ("dgbench-autoregressive", "gemma4-tiny"),
                                           ("dgbench-masked", "llama-masked-tiny")])
def test_engines_run_without_any_warning(engine, model):
    from dgbench.backends import ENGINES
    from dgbench.models.registry import get
    from dgbench.models.synthetic import build_synthetic
    from dgbench.telemetry.timing import Clock
    from dgbench.validation import Location, validate_mapping

    spec = get(model)
    knobs = validate_mapping({"cache": "static"} if "auto" in engine else {}, ENGINES[engine].knobs, Location("test"))
    decoder = ENGINES[engine].factory(build_synthetic(spec), spec, knobs)
    ids = torch.randint(5, 100, (2, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        record = decoder.generate(ids, torch.ones_like(ids), gen_length=16, fixed_length=True, seed=0, clock=Clock())
    assert len(record.tokens) == 2 and all(len(t) == 16 for t in record.tokens)


def test_tested_set_reads_pins_and_reports_differences(tmp_path):
    pinned = tested_set.pins()
    assert "transformers" in pinned and "torch" not in pinned   # torch is chosen by TORCH_SPEC
    f = tmp_path / "c.txt"
    f.write_text("# header\nTransformers==5.24.0\nlm_eval==0.4.13 ; python_version>'3'\n-e .\n")
    assert tested_set.pins(f) == {"transformers": "5.24.0", "lm-eval": "0.4.13"}
    diff = tested_set.differences({"transformers": "5.25.0", "lm-eval": "0.4.13", "torch": "2.13.0"},
                                  tested_set.pins(f))
    assert diff == {"transformers": {"installed": "5.25.0", "tested": "5.24.0"}}
    assert tested_set.describe(diff) == "measured on an untested set: transformers 5.25.0 (tested 5.24.0)"
    assert tested_set.describe({}) is None


@pytest.mark.skipif(bool(__import__("os").environ.get("DGBENCH_UNTESTED_SET")),
                    reason="make test-latest resolves without constraints.txt on purpose")
def test_installed_environment_is_the_tested_set():
    """make test installs with constraints.txt: a mismatch here means the file is stale."""
    found = tested_set.installed()
    assert found.get("transformers"), found
    assert tested_set.differences(found) == {}, tested_set.describe(tested_set.differences(found))
