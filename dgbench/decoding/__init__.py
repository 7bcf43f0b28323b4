"""dgbench's decoding engine: pure torch, no I/O, no model loading.

samplers are functions over frozen specs (every special token id a named field); the canvas loop in
diffusion.py drives any denoiser that implements the small protocol there.
"""
