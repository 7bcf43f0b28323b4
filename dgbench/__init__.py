"""dgbench: what diffusion decoding really buys over autoregressive decoding, measured."""

__version__ = "0.1.0"
