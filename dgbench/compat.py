"""Every seam where dgbench calls transformers below its public `generate`, in one place.

dgbench's engines drive transformers' modules and mask helpers directly (that is how they can be timed
phase by phase and stay token-identical to `generate`), so they see renames that `generate` users never
do. Each seam is chosen by feature detection on the callee's signature, never by comparing version
strings: a backport or a fork with the new signature takes the new path, and the next rename fails
loudly here, in a function that names it, instead of deep in a decode loop.

Seams (tested set in constraints.txt; both sides exercised by tests/test_compat.py):

1. The KV-cache keyword. transformers 5.23 takes `past_key_values=` in model forwards, decoder layers and
   the `masking_utils` helpers (`create_masks_for_generate`, `create_causal_mask`, DiffusionGemma's
   `create_diffusion_decoder_attention_mask`); 5.24 renamed it to `cache=` and keeps the old name
   through `@deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")`, which emits a
   FutureWarning per call (and the helpers that lack the decorator raise TypeError). `cache_kwarg`
   reads the callee's parameters; `deprecate_kwarg` wraps with `functools.wraps`, so
   `inspect.signature` sees the new name.
"""

from __future__ import annotations

import functools
import inspect

# The two spellings of the KV-cache keyword, newest first: the first one the callee declares wins.
CACHE_KWARGS = ("cache", "past_key_values")


def _callee(fn):
    """The plain function behind `fn`: a module's `forward` (or that of a wrapper delegating to a module,
    like the gate's slowed model), a bound method's function. Signatures are per class, not per instance,
    so this is what the lookup is cached on."""
    if not (inspect.isfunction(fn) or inspect.ismethod(fn)):
        forward = getattr(fn, "forward", None)
        if forward is not None:
            fn = forward
    return getattr(fn, "__func__", fn)


@functools.lru_cache(maxsize=None)
def _cache_kwarg_of(function) -> str:
    try:
        params = inspect.signature(function).parameters
    except (TypeError, ValueError):                        # builtins, C extensions: the old convention
        return CACHE_KWARGS[-1]
    for name in CACHE_KWARGS:
        if name in params:
            return name
    # Neither declared: a callee taking **kwargs passes them down to one that does; transformers before
    # the rename spelled it past_key_values everywhere, and after it every public callee declares `cache`.
    return CACHE_KWARGS[-1]


def cache_kwarg(fn) -> str:
    """The keyword under which `fn` (a function, bound method or nn.Module) takes the KV cache (seam 1)."""
    return _cache_kwarg_of(_callee(fn))


def cache_arg(fn, cache) -> dict:
    """`{keyword: cache}` for `fn(**cache_arg(fn, cache), ...)`: the KV cache under the name `fn` declares."""
    return {cache_kwarg(fn): cache}
