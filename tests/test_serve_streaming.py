"""The engines' streaming hook (what dgbench serve sends): the ids handed to `on_output`, call by call,
concatenate to exactly the tokens the generate call returns, in canvas-sized pieces for diffusion and one
token per step for AR; and passing the hook changes no token."""

from __future__ import annotations

import pytest

from dgbench.backends import ENGINES
from dgbench.decoding.autoregressive import left_pad
from dgbench.models.cache import ModelCache
from dgbench.models.registry import get
from dgbench.telemetry.timing import Clock
from dgbench.validation import Location, validate_mapping


@pytest.mark.parametrize("model, engine, knobs, piece", [
    ("ref-ar", "dgbench-autoregressive", {}, 1),
    ("ref-ar", "hf-autoregressive", {}, 1),
    ("ref-diffusion", "dgbench-masked", {"block_length": 4}, 4),
    ("diffusiongemma-tiny", "dgbench-diffusion", {"max_denoising_steps": 2}, 16),
])
def test_streamed_pieces_are_the_generated_tokens(model, engine, knobs, piece):
    spec = get(model)
    decoder = ENGINES[engine].factory(ModelCache().get(spec, "cpu", "float32"), spec,
                                      validate_mapping(dict(knobs), ENGINES[engine].knobs, Location("test")))
    ids, mask = left_pad([[53, 36, 54, 36], [55, 14]], spec.special_tokens["pad"])   # two prompt lengths
    gen = 2 * piece if piece > 1 else 6
    calls: list = []
    streamed = decoder.generate(ids, mask, gen, True, 3, Clock("cpu"), on_output=calls.append)
    plain = decoder.generate(ids, mask, gen, True, 3, Clock("cpu"))
    assert streamed.tokens == plain.tokens                       # the hook only reads
    assert all(len(call) == 2 and all(len(row) == piece for row in call) for call in calls)
    for row in range(2):
        assert [t for call in calls for t in call[row]][:gen] == streamed.tokens[row]
