"""benchmarks/engine_vs_transformers.py on the tiny specs: a variant at identical tokens gets its ratio, and one
whose tokens differ is labelled as not counting, with the share of token positions that still agree."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "engine_vs_transformers.py"


def _module():
    spec = importlib.util.spec_from_file_location("engine_vs_transformers", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_identical_variants_count_and_a_differing_one_says_how_far_it_agrees(capsys):
    evt = _module()
    r = evt.bench("diffusion", ("diffusiongemma-tiny", 1, 8, 32, {"max_denoising_steps": 3}), "cpu", 2, False)
    assert r["identical"] == {"transformers": 2, "dgbench": 2}
    assert r["agreement"] == {"transformers": 1.0, "dgbench": 1.0}
    evt.print_case("diffusion", r)
    out = capsys.readouterr().out
    assert "identical tokens in 2/2 reps" in out and "NOT at identical output" not in out

    # The same record with the engine's tokens differing in one repetition at 3 of 4 positions agreeing.
    r["identical"]["dgbench"], r["agreement"]["dgbench"] = 1, 0.75
    evt.print_case("diffusion", r)
    line, = [x for x in capsys.readouterr().out.splitlines() if x.strip().startswith("dgbench")]
    assert "identical tokens in 1/2 reps" in line
    assert "ratio does not count; tokens equal at 75.0% of positions" in line


def test_positions_equal_counts_every_token_of_every_row():
    evt = _module()
    assert evt._positions_equal([[1, 2, 3], [4, 5, 6]], [[1, 0, 3], [4, 5, 0]]) == (4, 6)
    assert evt._positions_equal([], []) == (0, 0)
