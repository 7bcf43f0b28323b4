"""Rows of the CPU generator's random64() stream, drawn without materializing the rows nobody reads.

The entropy-bound sampler draws a whole canvas's worth of random numbers every step (N x V random64()
values: 262,144 for one 64 x 4,096 canvas) so that the stream stays aligned with the reference, and reads
only the K accepted rows (multinomial.py). ATen makes every one of them, one scalar MT19937 step at a time:
~1.5-2.7 ms a step here, 6-9% of a diffusiongemma-small step at batch 1 (issue 23's profile).

`draw_rows` reads the default CPU generator's state (`torch.get_rng_state()`: ATen's CPUGeneratorImplState,
aten/src/ATen/CPUGeneratorImpl.cpp), runs the same MT19937 in mt19937.c, which regenerates the state in
vectorizable loops and tempers only the outputs of the K rows, and writes the advanced state back. The
values and the generator's state afterwards are the ones ATen's `random_()` would have produced.

The C file is compiled once per machine with the system C compiler (`CC`, else cc/gcc/clang) into
~/.cache/dgbench (or $DGBENCH_CACHE_DIR, as hardware/measure.py), and loaded with ctypes. Where there is no
compiler, the state layout is not the one expected, or the probe against torch fails, `available()` is
False and the caller keeps ATen's own draw: the same numbers, only slower. DGBENCH_NO_NATIVE=1 turns this
path off.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np
import torch

_SOURCE = Path(__file__).with_name("mt19937.c")
_STATE_BYTES = 5056                   # sizeof(CPUGeneratorImplState) on 64-bit Linux and macOS
_LEFT, _NEXT, _WORDS = 8, 16, 24      # byte offsets of legacy_pod.left (int32), .next (uint64), .state[624] (uint64)
_N = 624
_LOW_53 = (1 << 53) - 1
# Reading the generator's state, advancing it and writing it back is one step for ATen (its generator mutex):
# here it is three, so two of our own callers must not interleave them.
_STATE_LOCK = threading.Lock()


def _cache_dir() -> Path:
    return Path(os.environ.get("DGBENCH_CACHE_DIR") or Path.home() / ".cache" / "dgbench")


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


@functools.lru_cache(maxsize=None)
def _library():
    """The compiled mt19937.c, or None (no compiler, a failed build, or DGBENCH_NO_NATIVE=1)."""
    if os.environ.get("DGBENCH_NO_NATIVE") == "1" or not _SOURCE.exists():
        return None
    cc = _compiler()
    if cc is None:
        return None
    source = _SOURCE.read_bytes()
    key = hashlib.sha256(source + platform.machine().encode() + cc.encode()).hexdigest()[:16]
    target = _cache_dir() / f"mt19937-{key}.so"
    if not target.exists():
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # Built beside the target and renamed into place: two processes compiling at once both succeed.
            with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
                built = Path(tmp) / "mt19937.so"
                subprocess.run([cc, "-O3", "-fPIC", "-shared", "-o", str(built), str(_SOURCE)], check=True,
                               capture_output=True, timeout=120)
                os.replace(built, target)
        except (OSError, subprocess.SubprocessError):
            return None
    try:
        lib = ctypes.CDLL(str(target))
    except OSError:
        return None
    fn = lib.mt_draw_rows
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_int64), ctypes.c_int64,
                   ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p]
    return fn


def _draw(fn, n_rows: int, row_len: int, rows: torch.Tensor) -> torch.Tensor:
    with _STATE_LOCK:
        return _draw_locked(fn, n_rows, row_len, rows)


def _draw_locked(fn, n_rows: int, row_len: int, rows: torch.Tensor) -> torch.Tensor:
    state = torch.get_rng_state()
    if state.numel() != _STATE_BYTES:
        raise ValueError("unexpected CPU generator state size")
    raw = state.numpy().copy()                                               # uint8, ours to edit
    words = np.ascontiguousarray(raw[_WORDS:_WORDS + 8 * _N].view(np.uint64).astype(np.uint32))
    left = ctypes.c_int64(int(raw[_LEFT:_LEFT + 4].view(np.int32)[0]))
    nxt = ctypes.c_int64(int(raw[_NEXT:_NEXT + 8].view(np.uint64)[0]))
    rows = rows.to(torch.int64).contiguous()
    out = torch.empty((rows.numel(), row_len), dtype=torch.int64)
    scratch = np.empty(2 * row_len, dtype=np.uint32)
    if fn(words.ctypes.data, ctypes.byref(left), ctypes.byref(nxt), n_rows, row_len, rows.data_ptr(), rows.numel(),
          out.data_ptr(), scratch.ctypes.data) != 0:
        raise ValueError("rows must be ascending and within the canvas")
    raw[_WORDS:_WORDS + 8 * _N] = words.astype(np.uint64).view(np.uint8)
    raw[_LEFT:_LEFT + 4] = np.array([left.value], dtype=np.int32).view(np.uint8)
    raw[_NEXT:_NEXT + 8] = np.array([nxt.value], dtype=np.uint64).view(np.uint8)
    torch.set_rng_state(torch.from_numpy(raw))
    return out


def _torch_draw(n_rows: int, row_len: int, rows: torch.Tensor, generator: torch.Generator | None = None,
                device=None) -> torch.Tensor:
    """ATen's own draw of the same numbers: int64 random_() keeps random64() mod 2^63, of which the low 53 bits."""
    bits = torch.empty((n_rows, row_len), dtype=torch.int64, device=device).random_(generator=generator)
    return bits.index_select(0, rows).bitwise_and_(_LOW_53)


@functools.lru_cache(maxsize=None)
def available() -> bool:
    """Is the compiled draw here, and does it reproduce ATen's (values and the generator's state after)? Probed
    once per process on shapes that cross the 624-word regeneration, with the global generator saved and restored."""
    fn = _library()
    if fn is None:
        return False
    saved = torch.get_rng_state()
    try:
        for seed, n_rows, row_len, rows, warmup in ((3, 16, 1000, [0, 5, 15], 0), (11, 7, 311, [2, 3, 6], 77),
                                                    (5, 9, 624, [], 1)):
            torch.manual_seed(seed)
            torch.empty(warmup, dtype=torch.int64).random_()                   # start mid-block, too
            start = torch.get_rng_state()
            index = torch.tensor(rows, dtype=torch.int64)
            expected, after = _torch_draw(n_rows, row_len, index), torch.get_rng_state()
            torch.set_rng_state(start)
            got = _draw(fn, n_rows, row_len, index)
            if not (torch.equal(expected, got) and torch.equal(after, torch.get_rng_state())):
                return False
        return True
    except (ValueError, RuntimeError):
        return False
    finally:
        torch.set_rng_state(saved)


def draw_rows(n_rows: int, row_len: int, rows: torch.Tensor) -> torch.Tensor:
    """The low 53 bits of the random64() values at `rows` (K,), ascending, of an (n_rows, row_len) draw from the
    default CPU generator, which advances exactly as for the whole draw.  # (K, row_len) int64"""
    if available():
        return _draw(_library(), n_rows, row_len, rows)
    return _torch_draw(n_rows, row_len, rows)
