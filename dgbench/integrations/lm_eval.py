"""dgbench's decoders as lm-evaluation-harness models, `dgbench-diffusion` and `dgbench-ar`, timing every request.

    lm_eval --model dgbench-ar --model_args model=gemma4-tiny,dgbench_out=out \\
        --tasks suites/lm_eval_tasks/dgbench_mc.yaml --output_path out

`--model_args`: `model` (a name from `dgbench list models`), `engine` (default: dgbench-masked for a spec
with a mask token, else dgbench-diffusion; dgbench-autoregressive for AR), any knob of that engine
(`dgbench list engines`), `device`, `dtype`, `seed`, `max_gen_toks` (default cap when a task sets none),
`max_length`, `mc_samples` (diffusion log-likelihood), `dgbench_out` (folder for dgbench_requests.jsonl and
the dgbench run directory). Text goes through dgbench's byte-level codec (dgbench/tasks/text.py), the one
dgbench's own task scoring uses, so lm-eval and dgbench score the same token sequences.

The three requests of lm-eval's LM contract (lm_eval/api/model.py):
  * generate_until: batched (longest prompts first, left padding), the engine generates up to max_gen_toks
    or EOS, the text is cut at the first stop sequence (as lm-eval's HFLM does);
  * loglikelihood: AR exact (dgbench/decoding/loglikelihood.py, lm-eval's layout); diffusion a Monte Carlo
    ELBO estimate (dgbench/decoding/masked_elbo.py), a lower bound in expectation and NOT a log-likelihood: get_model_info()
    puts that sentence into lm-eval's results["config"];
  * loglikelihood_rolling: lm-eval's disjoint rolling windows (lm_eval.utils), each window scored as above.
Every decoder call appends its per-request decode statistics to a RequestLog (lm_eval_records.py).

Registration. lm-eval 0.4.13 scans no entry points for models: `--model NAME` resolves against its
registry before any task or user code runs. dgbench therefore (1) declares both classes in pyproject's
`lm_eval.models` entry-point group (the group lm-eval's registry reserves for plug-ins, and that lm-eval
versions with plug-in discovery read); (2) registers them when this module is imported, which dgbench's
task YAMLs do through a `!function dgbench.integrations.lm_eval_tasks...` that lm-eval resolves while it
parses `--tasks FILE.yaml` or `--tasks DIR`, before it creates the model; and (3) offers
`dgbench lm-eval ARGS` (dgbench/cli/lm_eval.py): lm-eval's own command line after registering every
`lm_eval.models` entry point, for any task (`--include_path DIR --tasks NAME`, lm-eval's built-in tasks).
"""

from __future__ import annotations

import logging
from pathlib import Path

from lm_eval.api.model import LM

from dgbench.errors import ConfigError

log = logging.getLogger(__name__)

ELBO_NOTE = ("dgbench-diffusion log-likelihoods are Monte Carlo ELBO estimates (a lower bound on log p in "
             "expectation, {samples} samples per request, LLaDA's masked-count form), not exact "
             "log-likelihoods; accuracies from them compare choices by their bounds")


def _as_int(name: str, value) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"--model_args {name}={value!r}: expected a whole number (lm-eval's 'auto' batch "
                          "sizing is not supported: give a number, e.g. --batch_size 8)") from None
    if number < 1:
        raise ConfigError(f"--model_args {name}={value!r}: must be at least 1")
    return number


def cut_at_stops(text: str, until: list[str]) -> str:
    """The text before the earliest stop sequence (lm-eval's HFLM cuts the same way)."""
    cut = len(text)
    for stop in until:
        if stop:
            at = text.find(stop)
            if at != -1:
                cut = min(cut, at)
    return text[:cut]


class DgbenchLM(LM):
    """Common part of both models: build (or adopt) a dgbench decoder, encode text, log every call."""

    paradigm = ""
    lm_eval_name = ""

    def __init__(self, model: str, engine: str | None = None, device: str | None = None, dtype: str = "auto",
                 batch_size=1, max_batch_size=None, seed: int = 0, max_gen_toks: int = 256,
                 max_length: int | None = None, mc_samples: int = 32, dgbench_out: str | None = None,
                 warmup: int = 1, decoder=None, progress: bool = True, **knobs):
        super().__init__()
        from dgbench.backends import ENGINES
        from dgbench.integrations.lm_eval_records import RequestLog
        from dgbench.models.registry import get
        from dgbench.tasks.text import check_spec
        from dgbench.validation import Location, did_you_mean, validate_mapping

        spec = get(str(model))
        if spec.paradigm != self.paradigm:
            other = "dgbench-ar" if spec.paradigm == "autoregressive" else "dgbench-diffusion"
            raise ConfigError(f"--model {self.lm_eval_name}: model {spec.name!r} is {spec.paradigm}; use --model "
                              f"{other}, or a {self.paradigm} model from `dgbench list models`")
        check_spec(spec)
        engine = engine or self.default_engine(spec)
        if engine not in ENGINES:
            raise ConfigError(f"--model_args engine={engine!r}: unknown engine; {did_you_mean(engine, sorted(ENGINES))}")
        if ENGINES[engine].paradigm != self.paradigm:
            raise ConfigError(f"--model_args engine={engine!r} decodes {ENGINES[engine].paradigm} models; "
                              f"{self.lm_eval_name} needs a {self.paradigm} engine (`dgbench list engines`)")
        self.knobs = validate_mapping(knobs, ENGINES[engine].knobs, Location("--model_args"))
        self.spec, self.engine = spec, engine
        self.batch_size = _as_int("batch_size", batch_size or 1)
        self.max_gen_toks = _as_int("max_gen_toks", max_gen_toks)
        self.mc_samples = _as_int("mc_samples", mc_samples)
        self.max_length = _as_int("max_length", max_length or spec.text_config.get("max_position_embeddings", 2048))
        self.seed = int(seed)
        self.progress = bool(progress)
        self.calls = 0
        self.log = RequestLog(Path(dgbench_out) if dgbench_out else None, self.describe())
        if decoder is None:
            from dgbench.models.cache import ModelCache
            from dgbench.hardware.detect import resolve_dtype

            self.device_name = self._pick_device(device)
            self.dtype = resolve_dtype(dtype, self.device_name)
            self.decoder = ENGINES[engine].factory(ModelCache().get(spec, self.device_name, self.dtype), spec,
                                                   self.knobs)
            # First-call costs (allocator, kernels) stay out of request timings. One block (masked engine) or
            # 8 tokens: enough to touch every kernel, short enough to cost little.
            for w in range(int(warmup)):
                self._generate([[self._bos]], self.knobs.get("block_length") or 8, seed=self.seed + 500 + w)
        else:
            self.decoder = decoder
            self.device_name = str(decoder.model.device)
            self.dtype = str(decoder.model.dtype).removeprefix("torch.")
        self.log.meta.update(self.describe())
        if dgbench_out:
            self.log.summarize_at_exit()

    # ---------------------------------------------------------------- identity

    @staticmethod
    def _pick_device(requested: str | None) -> str:
        """lm-eval's command line passes device cuda:0 unless told otherwise; without a visible GPU that
        default falls back to the CPU with a warning, as lm-eval's HFLM does."""
        import torch

        from dgbench.hardware.detect import resolve_device

        requested = str(requested or "auto")
        if requested.startswith("cuda") and not torch.cuda.is_available():
            log.warning("device %s requested but no CUDA device is visible: running on cpu", requested)
            return "cpu"
        return resolve_device(requested)

    @staticmethod
    def default_engine(spec) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def _bos(self) -> int:
        tokens = self.spec.special_tokens
        return int(tokens.get("bos", tokens["eos"]))

    def describe(self) -> dict:
        info = {"lm_eval_model": self.lm_eval_name, "model": self.spec.name, "engine": self.engine,
                "paradigm": self.paradigm, "knobs": self.knobs, "weights": self.spec.weights,
                "device": getattr(self, "device_name", None), "dtype": getattr(self, "dtype", None),
                "seed": self.seed, "batch_size": self.batch_size, "codec": "dgbench byte-level (tasks/text.py)"}
        if self.paradigm == "diffusion":
            info["mc_samples"] = self.mc_samples
            info["loglikelihood"] = ELBO_NOTE.format(samples=self.mc_samples)
        else:
            info["loglikelihood"] = "exact (autoregressive chain rule)"
        return info

    def get_model_info(self) -> dict:
        """lm-eval copies this into results["config"], so the ELBO caveat travels with every results file."""
        return {"dgbench": self.describe()}

    @property
    def tokenizer_name(self) -> str:
        return "dgbench-bytes"

    def chat_template(self, chat_template=False):
        return None

    @property
    def records(self) -> list[dict]:
        return self.log.records

    def _encode(self, text: str) -> list[int]:
        from dgbench.tasks.text import encode

        return encode(text, self.spec)

    def _record(self, request, **fields) -> None:
        self.log.add({"task": request.task_name, "doc_id": request.doc_id, "request_index": request.idx,
                      "request_type": request.request_type, **fields})

    # ---------------------------------------------------------------- generate_until

    def _generate(self, prompts: list[list[int]], gen_length: int, seed: int):
        from dgbench.decoding.autoregressive import left_pad
        from dgbench.telemetry.timing import Clock

        ids, mask = left_pad(prompts, self.spec.special_tokens["pad"], device=self.device_name)
        clock = Clock(self.device_name)
        return self.decoder.generate(ids, mask, gen_length, False, seed, clock)

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        from dgbench.metrics import per_rep_metrics
        from dgbench.tasks.text import decode

        prepared = []
        for req in requests:
            context, gen_kwargs = req.args
            gen_kwargs = dict(gen_kwargs or {})
            until = gen_kwargs.pop("until", None) or []
            until = [until] if isinstance(until, str) else list(until)
            gen_length = _as_int("max_gen_toks", gen_kwargs.pop("max_gen_toks", self.max_gen_toks))
            for key in sorted(set(gen_kwargs) - {"do_sample", "temperature"}):
                log.warning("gen_kwargs %s=%r ignored: sampling follows the engine's knobs", key, gen_kwargs[key])
            ids = self._encode(context) or [self._bos]
            ids = ids[-max(1, self.max_length - gen_length):]
            prepared.append((ids, until, gen_length))
        # Longest prompts first, as lm-eval's HFLM orders them: a batch pads to its first prompt.
        order = sorted(range(len(requests)), key=lambda i: (prepared[i][2], -len(prepared[i][0])))
        batches, current = [], []
        for i in order:
            if current and (len(current) == self.batch_size or prepared[current[0]][2] != prepared[i][2]):
                batches.append(current)
                current = []
            current.append(i)
        if current:
            batches.append(current)

        out: list[str | None] = [None] * len(requests)
        for batch in self._progress(batches, disable_tqdm, "generate_until"):
            gen_length = prepared[batch[0]][2]
            # Seeded by the first document's index, as dgbench's quality scenario seeds item k with
            # seed + 1000 + k: at batch size 1 a sampling engine draws the same tokens in both.
            doc = requests[batch[0]].doc_id or 0
            rec = self._generate([prepared[i][0] for i in batch], gen_length, self.seed + 1000 + doc)
            call = self.calls
            self.calls += 1
            batch_metrics = per_rep_metrics(rec, len(batch))
            for row, i in enumerate(batch):
                text = decode(rec.tokens[row], self.spec)
                kept = cut_at_stops(text, prepared[i][1])
                out[i] = kept
                useful, passes = rec.useful_tokens[row], max(rec.nfe_per_sequence[row], 1)
                self._record(requests[i], call=call, batch_size=len(batch), prompt_tokens=len(prepared[i][0]),
                             gen_length=gen_length, useful_tokens=useful,
                             answer_tokens=self._tokens_for(rec.tokens[row][:useful], kept),
                             nfe_sequence=passes, tokens_per_forward=useful / passes,
                             committed_tok_s=useful / rec.e2e_s if rec.e2e_s > 0 else None,
                             call_metrics=batch_metrics, stopped_by=[s for s in prepared[i][1] if s and s in text][:1])
                self.cache_hook.add_partial("generate_until", requests[i].args, kept)
        return out  # type: ignore[return-value]

    def _tokens_for(self, tokens: list[int], kept: str) -> int:
        """Generated tokens that make up `kept` (the text before the stop sequence): the shortest prefix
        whose decoded text covers it. Not len(encode(kept)): undecodable bytes became U+FFFD."""
        from dgbench.tasks.text import decode

        for k in range(len(tokens) + 1):
            if len(decode(tokens[:k], self.spec)) >= len(kept):
                return k
        return len(tokens)

    # ---------------------------------------------------------------- log-likelihood

    def _pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        # Byte-level ids: encode(context) + encode(continuation) == encode(context + continuation), so no
        # boundary handling is needed. An empty context is conditioned on BOS, lm-eval's prefix-token rule.
        return self._encode(context) or [self._bos], self._encode(continuation)

    def _score(self, pairs, requests, owners) -> list[tuple[float, bool]]:  # pragma: no cover - overridden
        raise NotImplementedError

    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        pairs = [self._pair(*req.args) for req in requests]
        results = self._score(pairs, requests, list(range(len(requests))), disable_tqdm)
        for req, res in zip(requests, results):
            self.cache_hook.add_partial("loglikelihood", req.args, res)
        return results

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

        pairs, owners = [], []
        for r, req in enumerate(requests):
            windows = get_rolling_token_windows(self._encode(req.args[0]), prefix_token=self._bos,
                                                max_seq_len=self.max_length, context_len=1)
            for window in map(make_disjoint_window, windows):
                pairs.append(window)
                owners.append(r)
        scores = self._score(pairs, requests, owners, disable_tqdm)
        totals = [0.0] * len(requests)
        for owner, (logprob, _) in zip(owners, scores):
            totals[owner] += logprob
        for req, total in zip(requests, totals):
            self.cache_hook.add_partial("loglikelihood_rolling", req.args, total)
        return totals

    def _progress(self, batches, disable_tqdm: bool, what: str):
        from tqdm import tqdm

        return tqdm(batches, disable=disable_tqdm or not self.progress, desc=f"{self.lm_eval_name} {what}")

    def _batches(self, pairs):
        """Indices grouped by batch_size, longest pair first (little padding per batch)."""
        order = sorted(range(len(pairs)), key=lambda i: -(len(pairs[i][0]) + len(pairs[i][1])))
        return [order[k:k + self.batch_size] for k in range(0, len(order), self.batch_size)]


class DgbenchARLM(DgbenchLM):
    paradigm = "autoregressive"
    lm_eval_name = "dgbench-ar"

    @staticmethod
    def default_engine(spec) -> str:
        return "dgbench-autoregressive"

    def _score(self, pairs, requests, owners, disable_tqdm=False):
        from dgbench.decoding.loglikelihood import loglikelihood
        from dgbench.telemetry.timing import Clock

        results: list = [None] * len(pairs)
        for batch in self._progress(self._batches(pairs), disable_tqdm, "loglikelihood"):
            clock = Clock(self.device_name)
            clock.start()
            scores = loglikelihood(self.decoder.model, [pairs[i] for i in batch],
                                   pad_token_id=self.spec.special_tokens["pad"], batch_size=len(batch),
                                   max_length=self.max_length)
            clock.stop()
            call = self.calls
            self.calls += 1
            for i, score in zip(batch, scores):
                results[i] = score
                self._record(requests[owners[i]], call=call, batch_size=len(batch), e2e_s=clock.elapsed, nfe=1,
                             nfe_sequence=1, context_tokens=len(pairs[i][0]), scored_tokens=len(pairs[i][1]),
                             logprob=score[0], exact=True)
        return results


class DgbenchDiffusionLM(DgbenchLM):
    paradigm = "diffusion"
    lm_eval_name = "dgbench-diffusion"

    @staticmethod
    def default_engine(spec) -> str:
        return "dgbench-masked" if "mask" in spec.special_tokens else "dgbench-diffusion"

    def _score(self, pairs, requests, owners, disable_tqdm=False):
        from dgbench.backends.masked_lm import make_denoiser
        from dgbench.decoding.masked_elbo import elbo_loglikelihood
        from dgbench.telemetry.timing import Clock

        if "mask" not in self.spec.special_tokens:
            raise ConfigError(f"--model dgbench-diffusion: model {self.spec.name!r} has no mask token, and dgbench "
                              "estimates log-likelihoods only for masked diffusion (an ELBO over masked tokens); "
                              "run generate_until tasks with it, or use a masked model (e.g. one with engine "
                              "dgbench-masked)")
        denoiser = make_denoiser(self.decoder.model, "none")
        results: list = [None] * len(pairs)
        for batch in self._progress(self._batches(pairs), disable_tqdm, "ELBO"):
            passes = [0] * len(batch)
            forwards = []

            def on_forward(row_owners):
                forwards.append(1)
                for b in set(row_owners):
                    passes[b] += 1

            clock = Clock(self.device_name)
            clock.start()
            estimates = elbo_loglikelihood(
                denoiser.logits, [pairs[i] for i in batch], self.spec.special_tokens["mask"],
                self.spec.special_tokens["pad"], samples=self.mc_samples, seed=self.seed,
                rows_per_forward=len(batch) * (self.mc_samples + 1), max_length=self.max_length,
                device=self.device_name, on_forward=on_forward)
            clock.stop()
            call = self.calls
            self.calls += 1
            for b, (i, est) in enumerate(zip(batch, estimates)):
                results[i] = (est.estimate, est.is_greedy)
                self._record(requests[owners[i]], call=call, batch_size=len(batch), e2e_s=clock.elapsed,
                             nfe=len(forwards), nfe_sequence=passes[b], context_tokens=len(pairs[i][0]),
                             scored_tokens=len(pairs[i][1]), logprob=est.estimate, exact=False,
                             elbo_std_error=est.std_error, mc_samples=est.samples)
        return results


def register() -> None:
    """Put both names into lm-eval's model registry (a no-op when an entry point already holds them)."""
    import lm_eval.models  # noqa: F401  (lm-eval fills its registry only if it is empty: do that first)
    from lm_eval.api.registry import model_registry

    for cls in (DgbenchDiffusionLM, DgbenchARLM):
        try:
            model_registry.register(cls.lm_eval_name)(cls)
        except (ValueError, AttributeError):
            # Already registered, e.g. as our own entry point by an lm-eval that scans them (0.4.13 raises
            # AttributeError when it compares that placeholder with the class).
            pass


register()
