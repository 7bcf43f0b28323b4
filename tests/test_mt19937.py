"""mt19937.draw_rows (dgbench/decoding/mt19937.py + mt19937.c) against ATen's own draw: the same values at the rows
read and the same generator state afterwards, from fresh seeds and from mid-block positions, for canvases that
cross the 624-word regeneration any number of times; and a clean fallback where no compiler works."""

import os
import shutil
import subprocess
import sys

import pytest
import torch

from dgbench.decoding import mt19937


def _aten(n_rows, row_len, rows):
    bits = torch.empty((n_rows, row_len), dtype=torch.int64).random_()
    return bits[rows] & ((1 << 53) - 1)


needs_compiler = pytest.mark.skipif(mt19937._compiler() is None, reason="no C compiler on this machine")


@needs_compiler
def test_the_compiled_draw_is_built_and_passes_its_probe():
    assert mt19937.available()


@pytest.mark.parametrize("n_rows,row_len", [(64, 4096), (7, 100), (3, 624), (1, 1), (5, 313), (40, 2048)])
def test_draw_rows_equals_aten_values_and_state(n_rows, row_len):
    g = torch.Generator().manual_seed(n_rows * 1000 + row_len)
    for trial in range(6):
        torch.manual_seed(trial)
        torch.empty(trial * 97, dtype=torch.int64).random_()            # start anywhere inside a block
        keep = torch.rand(n_rows, generator=g) < (0.0, 0.1, 0.5, 1.0, 0.3, 0.02)[trial]
        rows = keep.nonzero().squeeze(1)
        start = torch.get_rng_state()
        expected, after = _aten(n_rows, row_len, rows), torch.get_rng_state()
        torch.set_rng_state(start)
        got = mt19937.draw_rows(n_rows, row_len, rows)
        assert torch.equal(got, expected)
        assert torch.equal(torch.get_rng_state(), after)          # so every later draw is ATen's too


@needs_compiler
def test_rows_out_of_order_are_refused_and_leave_the_generator_alone():
    torch.manual_seed(0)
    before = torch.get_rng_state()
    with pytest.raises(ValueError, match="ascending"):
        mt19937.draw_rows(8, 16, torch.tensor([5, 2]))
    assert torch.equal(torch.get_rng_state(), before)


def _probe_in_fresh_process(env_extra: dict) -> str:
    code = ("import torch; from dgbench.decoding import mt19937 as m; torch.manual_seed(1); "
            "r = torch.tensor([0, 3]); s = torch.get_rng_state(); a = m._torch_draw(4, 700, r); "
            "sa = torch.get_rng_state(); "
            "torch.set_rng_state(s); b = m.draw_rows(4, 700, r); "
            "print(m.available(), torch.equal(a, b) and torch.equal(sa, torch.get_rng_state()))")
    env = {**os.environ, **env_extra}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True)
    return out.stdout.strip()


@needs_compiler
def test_a_fresh_cache_is_compiled_into(tmp_path):
    assert _probe_in_fresh_process({"DGBENCH_CACHE_DIR": str(tmp_path)}) == "True True"
    assert any(p.name.startswith("mt19937-") and p.suffix == ".so" for p in tmp_path.iterdir())


@pytest.mark.parametrize("env", [{"CC": "false"}, {"DGBENCH_NO_NATIVE": "1"}], ids=["broken compiler", "turned off"])
def test_without_the_compiled_draw_the_numbers_are_the_same(tmp_path, env):
    # A compiler that fails (`false` exits 1) must leave ATen's draw in place, not an error.
    env = {**env, "DGBENCH_CACHE_DIR": str(tmp_path)}
    if env.get("CC") == "false":
        env["CC"] = shutil.which("false") or "false"
        env["PATH"] = str(tmp_path)                       # hide cc/gcc/clang so CC is the only candidate
        (tmp_path / "false").symlink_to(shutil.which("false"))
    assert _probe_in_fresh_process(env) == "False True"
