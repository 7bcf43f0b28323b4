"""The DiffusionGemma reference pair: a DiffusionGemmaForBlockDiffusion trained with the uniform-state
diffusion objective its sampler assumes, and its Gemma4ForCausalLM twin trained next-token.

Architecture: built by dgbench.models.synthetic from a ModelSpec, exactly as the random-weight
`diffusiongemma-tiny/small` rows are built (MoE block on, a tiny vision tower dropped after building), with
the byte-level vocabulary of the Llama pair (backbone.py), so prompts and tokenizer files are shared.

Objective (`uniform-diffusion`), written to match what dgbench.decoding.diffusion / entropy_bound do at
inference, operation for operation where it matters:

- The prompt goes through the causal encoder into a KV cache (DiffusionGemmaDenoiser.encode, the very
  adapter the `dgbench-diffusion` engine decodes with); the canvas attends to it and bidirectionally
  within itself (canvas_context / denoise), positions continuing after the prompt.
- Forward process: uniform-state discrete diffusion (D3PM's uniform kernel, Austin et al. 2021,
  arXiv 2107.03006; SEDD's "uniform" graph, Lou et al. 2023, arXiv 2310.16834; UDLM, Schiff et al. 2024,
  arXiv 2412.10193; Duo, Sahoo et al. 2025, arXiv 2506.10892): t ~ U(0, 1) per sequence, each canvas
  position replaced with probability t by a token drawn uniformly from the whole vocabulary (specials
  included: the sampler's initial_canvas/renoise draw randint(0, V)). That is the sampler's state: the
  accepted tokens, and fresh uniform noise everywhere else.
- Loss: cross entropy of the clean canvas at every canvas position (the x0-parameterisation; noised and
  kept positions alike, since under uniform noise the model cannot tell which is which). GUESS: the
  unweighted mean, D3PM's auxiliary x0 cross entropy, not the time-weighted ELBO of UDLM/Duo; the sampler
  only uses the x0 prediction and its entropy, and the plain CE trains exactly that.
- Targets fill the whole canvas: the answer, then EOS to the canvas's end (LLaDA pads SFT answers with EOS
  the same way), so the sampler's stop-at-EOS and its mean-entropy stop both see a determined canvas.
  In-place items (a Sudoku grid, the pyfill gap + suffix) keep their given positions clean in the canvas,
  as fill_template fixes them; Sudoku rows are in place with probability 1/2, else the whole grid is noised
  (the after-prompt decode); pyfill is always in place (its diffusion prompt is the prefix only).
- Self-conditioning (Chen, Zhang & Hinton 2022, "Analog Bits", arXiv 2208.04202, sec. 3 and Alg. 1): on a
  share SELF_COND_SHARE of the batches a first pass runs without it (zeros, as the sampler's first step),
  its logits are detached, and the loss is taken on a second pass given them; other batches train the
  zero-signal pass. GUESS: the first pass's logits are divided by a temperature drawn from U(t_min, t_max)
  of the sampler's schedule (0.4..0.8), because the sampler feeds back *tempered* logits
  (decoding.diffusion: sc_logits = tempered); Analog Bits feeds back the raw estimate. Another guess: the
  sampler's signal comes from the previous step's (noisier) canvas, training uses the same x_t, as Chen
  et al. do.
- The MoE router gets no load-balancing loss (GUESS: 4 experts top-2 at this size; none was needed to
  learn the tasks).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dgbench.training.backbone import BYTE_OFFSET, GEMMA_CANVAS_LENGTH as CANVAS_LENGTH, GEMMA_TEXT_CONFIG, \
    SPECIAL_TOKENS, VOCAB_SIZE

SELF_COND_SHARE = 0.5       # Analog Bits: self-conditioning on half of the training batches
SC_TEMPERATURE = (0.4, 0.8)  # the sampler's default t_min, t_max (hf_diffusion.DIFFUSIONGEMMA_KNOBS)
IN_PLACE_SHARE = 0.5        # Sudoku rows trained in place (givens clean) vs the whole grid noised


def spec(paradigm: str, name: str | None = None):
    from dgbench.models.registry import ModelSpec

    diffusion = paradigm == "diffusion"
    return ModelSpec(name or ("trained-diffusiongemma" if diffusion else "trained-gemma4"),
                     "diffusiongemma" if diffusion else "gemma4", paradigm,
                     "DiffusionGemmaForBlockDiffusion" if diffusion else "Gemma4ForCausalLM", dict(GEMMA_TEXT_CONFIG),
                     canvas_length=CANVAS_LENGTH if diffusion else None, weights="in-memory",
                     special_tokens=dict(SPECIAL_TOKENS))


def build_model(paradigm: str, seed: int):
    """Fresh float32 weights by transformers' own init (dgbench.models.synthetic), same for the same seed."""
    from dgbench.models.synthetic import build_synthetic

    return build_synthetic(spec(paradigm), seed=seed)


def encode(text: str) -> list[int]:
    return [b + BYTE_OFFSET for b in text.encode("utf-8")]


def canvas_target(item, in_place: bool) -> tuple[list[int], list[bool]]:
    """The clean canvas (CANVAS_LENGTH ids) and which of its positions are given (never noised)."""
    eos = SPECIAL_TOKENS["eos"]
    if in_place:
        template = encode(item.template)
        blanks = list(item.blanks)
        fill = encode(item.answer)
        if item.answer_span is not None:     # pyfill: the gap's text, then EOS to the gap's end
            fill = (fill + [eos] * len(blanks))[:len(blanks)]
        ids = list(template)
        for pos, tok in zip(blanks, fill if len(fill) == len(blanks) else [fill[p] for p in blanks]):
            ids[pos] = tok
        blank = set(blanks)
        fixed = [k not in blank for k in range(len(ids))]
    else:
        ids, fixed = encode(item.answer), [False] * len(encode(item.answer))
    if len(ids) > CANVAS_LENGTH:
        raise ValueError(f"{item.id}: canvas of {len(ids)} tokens exceeds the canvas length {CANVAS_LENGTH}")
    pad = CANVAS_LENGTH - len(ids)
    return ids + [eos] * pad, fixed + [False] * pad


def corrupt(target: torch.Tensor, fixed: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """x_t: t ~ U(0,1) per row; each position that is not fixed becomes a uniform token with probability t."""
    B, L = target.shape
    t = torch.rand(B, generator=generator)                                              # (B,)
    replace = (torch.rand(B, L, generator=generator) < t[:, None]) & ~fixed
    noise = torch.randint(0, VOCAB_SIZE, (B, L), generator=generator)
    return torch.where(replace, noise, target)


def uniform_diffusion_loss(model, items, generator: torch.Generator) -> torch.Tensor:
    from dgbench.backends.diffusiongemma import DiffusionGemmaDenoiser

    B, L, V = len(items), CANVAS_LENGTH, VOCAB_SIZE
    in_place = torch.rand(B, generator=generator) < IN_PLACE_SHARE
    rows = [canvas_target(it, it.template is not None and (it.answer_span is not None or bool(in_place[b])))
            for b, it in enumerate(items)]
    target = torch.tensor([r[0] for r in rows], dtype=torch.long)                       # (B, L)
    fixed = torch.tensor([r[1] for r in rows], dtype=torch.bool)                        # (B, L)
    prompts = [encode(it.prompt) for it in items]
    P = max(map(len, prompts))
    # Left padding (masked out): the canvas then sits right after every prompt, as in a batch-1 decode.
    prompt_ids = torch.full((B, P), SPECIAL_TOKENS["pad"], dtype=torch.long)
    prompt_mask = torch.zeros((B, P), dtype=torch.bool)
    for b, p in enumerate(prompts):
        prompt_ids[b, P - len(p):] = torch.tensor(p)
        prompt_mask[b, P - len(p):] = True

    noisy = corrupt(target, fixed, generator)                                           # (B, L)

    denoiser = DiffusionGemmaDenoiser(model)
    denoiser.begin(B, P + L)
    denoiser.encode(prompt_ids, prompt_mask, torch.arange(P, dtype=torch.int32).unsqueeze(0))
    context = denoiser.canvas_context(F.pad(prompt_mask, (0, L), value=True),
                                      torch.arange(P, P + L, dtype=torch.int32).unsqueeze(0))
    sc_logits = sc_probs = None
    if float(torch.rand(1, generator=generator)) < SELF_COND_SHARE:
        with torch.no_grad():
            first = denoiser.denoise(noisy, None, None, context)
            lo, hi = SC_TEMPERATURE
            tau = lo + (hi - lo) * torch.rand(1, generator=generator)
            sc_logits = first / tau
            sc_probs = torch.softmax(sc_logits, dim=-1, dtype=torch.float32)
    logits = denoiser.denoise(noisy, sc_logits, sc_probs, context)                      # (B, L, V)
    return F.cross_entropy(logits.reshape(B * L, V), target.reshape(B * L))
