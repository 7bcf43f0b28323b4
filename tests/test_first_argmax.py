"""first_argmax (dgbench/decoding/first_argmax.py) gives torch.argmax's index for every input it takes: ties (the
first maximum), infinities, NaN (the first NaN), constant rows, odd widths that fall back, and non-contiguous input."""

import pytest
import torch

from dgbench.decoding.first_argmax import first_argmax


def _cases(vocab: int):
    g = torch.Generator().manual_seed(vocab)
    base = torch.randn(3, 5, vocab, generator=g)
    ties = (base * 2).round()                           # many equal maxima in a row
    nan = base.clone()
    nan[..., ::37] = float("nan")
    one_nan = base.clone()
    one_nan[1, 2, vocab - 1] = float("nan")             # NaN in the last chunk beats a larger number earlier
    one_nan[1, 2, 3] = float("inf")
    inf = base.clone()
    inf[..., 5] = float("inf")
    inf[..., vocab // 2] = float("inf")
    neg_inf = base.clone()
    neg_inf[0, 0] = float("-inf")
    return {"random": base, "ties": ties, "nan": nan, "nan beats inf": one_nan, "inf": inf, "all -inf": neg_inf,
            "zeros": torch.zeros_like(base), "last is max": torch.arange(vocab, dtype=torch.float32).expand(2, vocab)}


@pytest.mark.parametrize("vocab", [4096, 512, 262144 // 128, 96, 100, 7])
def test_first_argmax_is_torch_argmax(vocab):
    for name, x in _cases(vocab).items():
        assert torch.equal(first_argmax(x), torch.argmax(x, dim=-1)), (vocab, name)


def test_first_argmax_on_strided_and_low_precision_input():
    x = torch.randn(6, 8, 1024, generator=torch.Generator().manual_seed(1))
    for view in (x[::2], x.transpose(0, 1), x[:, 3], x.to(torch.bfloat16), x.to(torch.float64)):
        assert torch.equal(first_argmax(view), torch.argmax(view, dim=-1))
