"""Wrap a loaded model as a Decoder for the harness. Importing this registers every engine (cheaply)."""

from dgbench.backends import (  # noqa: F401  (registration)
    autoregressive, diffusiongemma, hf_autoregressive, hf_diffusion, masked_lm)
from dgbench.backends.base import ENGINES, Decoder, Engine, GenerationRecord

__all__ = ["ENGINES", "Decoder", "Engine", "GenerationRecord"]
