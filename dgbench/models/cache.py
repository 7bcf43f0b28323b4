"""One loaded model at a time, for the runner and lm-eval's adapter."""

from __future__ import annotations


class ModelCache:
    """Keeps the last loaded model. Points are ordered decoder by decoder, so one slot loads each model
    once while never holding two large models at the same time."""

    def __init__(self):
        self.key = None
        self.model = None

    def get(self, spec, device: str, dtype: str):
        key = (spec.name, device, dtype)
        if key != self.key:
            self.model = None
            free_memory(device)
            # Specs with real weights (the embedded reference pair, a local checkpoint) load them offline;
            # the others are built with random weights on the target device.
            if spec.weights == "synthetic":
                from dgbench.models.synthetic import build_synthetic

                self.model = build_synthetic(spec, device=device, dtype=dtype)
            else:
                from dgbench.models.loading import load_model

                self.model = load_model(spec, device=device, dtype=dtype)
            self.key = key
        return self.model


def free_memory(device: str) -> None:
    import gc

    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()
