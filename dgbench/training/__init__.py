"""`dgbench train`: a matched pair of small reference models that dgbench trains itself.

One transformers backbone (LlamaForCausalLM config, backbone.py), trained either as a masked-diffusion
denoiser (run bidirectionally with a full 4D mask, exactly as the `dgbench-masked` engine runs it) or as
a causal next-token model, on the same generated task data (data.py), the same number of steps and the
same seed. Only the objective (objectives.py) and, later, the decoder differ.

    data.py        task items (Sudoku 4x4/6x6, arithmetic-sequence infill, procedural MC), disjoint splits
    backbone.py    the shared architecture and byte-level vocabulary (no torch at import)
    tokenizer.py   a byte-level tokenizer.json matching dgbench.tasks.text
    objectives.py  masked-diffusion loss (LLaDA / MDLM) and next-token loss
    loop.py        the seeded training loop with a rich progress bar
    evaluate.py    held-out accuracy through the real decoding engines and scorers
    checkpoint.py  safetensors + config + tokenizer + model card with a loss-curve PNG
"""
