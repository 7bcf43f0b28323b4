"""`dgbench lm-eval ARGS`: lm-evaluation-harness's own command line, with dgbench's models registered.

lm-eval 0.4.13 resolves `--model NAME` before it runs any plug-in code, so `lm_eval --model dgbench-ar`
works directly only with dgbench's task YAMLs (they import dgbench; see dgbench/integrations/lm_eval.py).
This command registers every installed `lm_eval.models` entry point first, then hands ARGS to lm-eval
unchanged, so any task works: `--include_path DIR --tasks NAME` or lm-eval's built-in ones.
"""

from __future__ import annotations

import sys

NAME = "lm-eval"
ENTRY_POINT_GROUP = "lm_eval.models"   # pyproject.toml declares dgbench-diffusion and dgbench-ar in it

EPILOG = """\
examples:
  dgbench lm-eval --model dgbench-ar --model_args model=gemma4-tiny \\
      --include_path suites/lm_eval_tasks --tasks dgbench_mc --limit 20 --output_path out
  dgbench lm-eval --model dgbench-diffusion --model_args model=diffusiongemma-tiny,max_denoising_steps=4 \\
      --include_path suites/lm_eval_tasks --tasks dgbench_mc_gen --limit 10 --output_path out
  dgbench lm-eval --model dgbench-ar --model_args model=gemma4-tiny --include_path suites/lm_eval_tasks \\
      --tasks dgbench_gpqa_diamond --metadata '{"gpqa_path": "/data/gpqa_diamond.csv"}'

--model_args: model (dgbench list models), engine and its knobs (dgbench list engines), device, dtype,
seed, max_gen_toks, max_length, mc_samples (diffusion log-likelihood: Monte Carlo ELBO samples),
dgbench_out. With --output_path OUT (and no dgbench_out), dgbench_out=OUT is added: per-request speed
goes to OUT/dgbench_requests.jsonl and, after lm-eval wrote its results, a dgbench run directory
OUT/dgbench_run/ (run.json + points.jsonl + samples.jsonl) holds accuracy beside speed.
Everything after `lm-eval` is lm-eval's: `dgbench lm-eval run --help` shows its options.

exit codes: 0 evaluated, 2 bad input (a dgbench model argument, or lm-eval's own usage errors),
            1 anything else lm-eval reports (its traceback is shown)
"""


def add_parser(sub, formatter) -> None:
    # prefix_chars="+": every "-"/"--" argument is lm-eval's, passed through untouched.
    parser = sub.add_parser(NAME, help="run lm-evaluation-harness with dgbench's decoders (dgbench-diffusion, "
                                       "dgbench-ar), speed recorded per request", formatter_class=formatter,
                            prefix_chars="+", add_help=False, epilog=EPILOG,
                            description="lm-evaluation-harness's command line with dgbench's decoders registered "
                                        "as lm-eval models. Diffusion log-likelihoods are Monte Carlo ELBO "
                                        "estimates (a bound), not exact log-likelihoods.")
    parser.add_argument("lm_eval_args", nargs="*", help="arguments for lm-eval (see the examples)")
    parser.set_defaults(lm_eval_parser=parser)


def with_dgbench_out(argv: list[str]) -> list[str]:
    """Add dgbench_out=OUT to --model_args when --output_path OUT is given and dgbench_out is not."""
    argv = list(argv)
    out = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--output_path"), None)
    if out is None:
        return argv
    if "--model_args" not in argv:
        return argv + ["--model_args", f"dgbench_out={out}"]
    i = argv.index("--model_args") + 1
    if i < len(argv) and not argv[i].lstrip().startswith("{") and "dgbench_out=" not in argv[i]:
        argv[i] = f"{argv[i]},dgbench_out={out}" if argv[i] else f"dgbench_out={out}"
    return argv


def register_entry_points() -> list[str]:
    """Register every installed `lm_eval.models` entry point lazily (what lm-eval 0.4.13 does not do)."""
    from importlib.metadata import entry_points

    import lm_eval.models  # noqa: F401  (lm-eval fills its registry only if it is empty: do that first)
    from lm_eval.api.registry import model_registry

    names = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in model_registry:
            # Loaded now, not registered as a lazy placeholder: importing dgbench's module registers its
            # classes itself, and lm-eval 0.4.13 cannot compare a placeholder with the class it then meets.
            target = ep.load()
            if ep.name not in model_registry:
                model_registry.register(ep.name)(target)
        names.append(ep.name)
    return names


def main(args) -> int:
    argv = list(args.lm_eval_args)
    if not argv or argv[0] in ("-h", "--help"):
        args.lm_eval_parser.print_help()
        return 0
    from lm_eval.__main__ import cli_evaluate

    register_entry_points()
    saved = sys.argv
    sys.argv = ["lm_eval", *with_dgbench_out(argv)]
    try:
        cli_evaluate()
    except SystemExit as exc:   # lm-eval's argparse errors exit 2, its own failures non-zero
        return exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = saved
    return 0
