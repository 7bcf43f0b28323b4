"""Suite files: find them, parse YAML with line numbers, apply --set overrides, validate strictly.

A suite names its decoders (model + engine + knobs), the sweep grid, how to measure and which metrics
a gate watches. Validation happens before anything is loaded; every error is one line naming
file:line, the field and the fix.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from dgbench.errors import ConfigError
from dgbench.harness.executors import EXECUTOR_FIELDS, check_address
from dgbench.metadata import suite_hash  # noqa: F401  (re-exported: the run's config hash)
from dgbench.metrics import METRICS, direction
from dgbench.safe_yaml import MAX_SUITE_BYTES, load_yaml_text, parse_yaml  # noqa: F401 (parse_yaml: API)
from dgbench.scenarios.base import SCENARIOS, for_suite, point_model, suite_scenarios
from dgbench.scenarios.generation import COMMON_AXES  # noqa: F401  (re-exported)
from dgbench.tasks import TASKS
from dgbench.tasks.lm_eval import builtin_suite_dir
from dgbench.validation import Field, Location, did_you_mean, validate, validate_mapping

DTYPES = ["auto", "float32", "bfloat16", "float16"]
SEED_MAX = 2**32 - 1


def _engines():
    from dgbench.backends import ENGINES

    return ENGINES


PROMPT_FITS = ["pack", "truncate", "items"]

# The checkpoint fields have no default, so decoders without them keep their config hash.
DECODER = Field(dict, fields={
    "name": Field(str, required=True, help="row label, unique in the suite, e.g. 'diffusion'"),
    "model": Field(str, required=True,
                   help="a name from `dgbench list models`, a checkpoint directory, or a repo id in the local "
                        "Hugging Face cache (org/name or org/name@revision)"),
    "engine": Field(str, choices=lambda: sorted(_engines()),
                    help="a decoding engine from `dgbench list engines` (default: from the checkpoint's "
                         "architecture)"),
    "knobs": Field(dict, default=dict),
    "dtype": Field(str, default="auto", choices=DTYPES),
    "checkpoint": Field(str, help="real weights for a spec name: a directory or a cached repo id"),
    "revision": Field(str, help="branch, tag or commit of a cached repo id (default: refs/main)"),
    "weights": Field(str, choices=["synthetic", "checkpoint"],
                     help="synthetic: random weights even when the checkpoint is cached; checkpoint: fail "
                          "unless it is found"),
    "trust_remote_code": Field(bool, help="run the checkpoint's own Python files (config.json auto_map)"),
    "chat": Field(bool, help="apply the tokenizer's chat template to prompts (default: when it has one)"),
    "device_map": Field(str, help="accelerate placement: auto (every visible GPU) or device (the run's)"),
    "prompts": Field(str, help="this decoder's prompt source (overrides the suite's `prompts:`)"),
    "prompt_fit": Field(str, choices=PROMPT_FITS, help="this decoder's prompt_fit (overrides the suite's)"),
})

DECODERS_HELP = "a list of {name, model, engine, knobs}"

SUITE_FIELDS = {
    "name": Field(str, required=True),
    "description": Field(str, default=""),
    "scenario": Field(str, default="latency", choices=suite_scenarios),   # registered in scenarios/
    # torch.manual_seed takes [-2**63, 2**64); dgbench adds small offsets per call and item, so seeds stay
    # within 32 bits (what numpy's and most other RNGs accept too).
    "seed": Field(int, default=0, min=0, max=SEED_MAX, help="a non-negative integer below 2**32"),
    # latency/throughput: what the timed calls are prompted with (dgbench/scenarios/prompts.py): a source name
    # or file (a string); serve reads a mapping {source: task|file|synthetic, ...} under the same key
    # (scenarios/serve/config.py). No default, so suites without it keep their config hash.
    "prompts": Field(object, help="latency/throughput: synthetic, humaneval, sudoku, mc, or a .jsonl/.txt file "
                                  "of prompts; serve: {source: task|file|synthetic, ...}"),
    "prompt_fit": Field(str, choices=PROMPT_FITS,
                        help="how texts meet prompt_length: pack (concatenate, cut to exactly prompt_length "
                             "tokens; default) or truncate (one text per row, cut, left-padded)"),
    # No default for the two below, so suites without them keep their config hash.
    "seeds": Field(list, item=Field(int, min=0, max=SEED_MAX), scalar_ok=True,
                   help="repeat stochastic decoders once per seed, e.g. [0, 1, 2] (or `run --seeds N`)"),
    "compare": Field(dict, help="speed at equal accuracy: {margin: 0.02} (absolute) or {margin: 0.99, "
                                "margin_kind: relative} (MLPerf: at least 99% of the AR reference's accuracy)"),
    # Required by every scenario that loads a model (all but serve; checked in validate_suite).
    "decoders": Field(list, item=DECODER, help=DECODERS_HELP),
    "sweep": Field(dict, fields={
        "batch_size": Field(list, default=lambda: [1], scalar_ok=True, item=Field(int, min=1)),
        "gen_length": Field(list, default=lambda: [64], scalar_ok=True, item=Field(int, min=1)),
        "prompt_length": Field(list, default=lambda: [16], scalar_ok=True, item=Field(int, min=1)),
        # Extra axes over engine knobs (e.g. max_denoising_steps); each applies to the decoders whose
        # engine has that knob and is left out for the others.
        "knobs": Field(dict, default=dict, values=Field(list, scalar_ok=True)),
    }),
    "measure": Field(dict, fields={
        "warmup": Field(int, default=1, min=0, help="untimed calls before each point"),
        "min_repetitions": Field(int, default=3, min=1),
        "max_repetitions": Field(int, default=20, min=1),
        "min_time_s": Field(float, default=1.0, min=0.0, help="keep repeating until this much was measured"),
        "fixed_length": Field(bool, default=True, help="ignore EOS so every call generates gen_length tokens"),
        "memory": Field(bool, default=True, help="one extra untimed call to measure peak memory"),
        # No default (config hashes of existing suites stay): batch > 1 points also run each prompt alone.
        "batch_invariance": Field(bool, help="also generate each prompt of a batch alone (untimed) and store "
                                             "how many sequences come out identical"),
    }),
    # Telemetry (NVML per GPU, CPU process, RAPL) sampled in a background thread into RUN_DIR/telemetry.csv.
    "telemetry": Field(dict, fields={
        "enabled": Field(bool, default=True, help="sample power, energy, clocks, utilisation during the run"),
        "rate_hz": Field(float, default=10.0, min=0.1, help="samples per second (plus one at every phase change)"),
    }),
    # Where points run (harness/executors): this process, or a Ray cluster. Not part of the config hash.
    "executor": Field(dict, fields=EXECUTOR_FIELDS),
    # Quality tasks (scenario: quality). No default, so suites without it keep their config hash; its
    # contents are checked against each registered task's fields (dgbench/tasks/) by _validate_tasks.
    "tasks": Field(dict, help="quality tasks, e.g. {sudoku: {size: 4}, mc: {source: procedural}}"),
    # Serve scenario (dgbench/scenarios/serve/config.py checks their contents); no defaults either.
    "endpoint": Field(dict, help="the server under load: {url, model, api, headers_env}"),
    "endpoints": Field(list, help="several servers: [{name, url, model, api}, ...]"),
    "load": Field(dict, help="concurrency, request_rate, arrival, num_requests or duration_s, timeout_s"),
    "slo": Field(dict, help="{ttft_ms, e2e_ms, tpot_ms} for goodput"),
    "gate": Field(dict, fields={
        "threshold": Field(float, default=0.05, min=0.0, help="relative change tolerated by default (a factor: 0.05 = 5% slower or 1/1.05 the throughput)"),
        # alpha and absolute have no default, so suites without them keep their config hash (dgbench/gate/rules.py
        # fills in alpha 0.05 and absolute 0).
        "alpha": Field(float, min=0.0, help="significance level of the gate's tests (default 0.05)"),
        "metrics": Field(list, default=list, item=Field(dict, fields={
            "name": Field(str, required=True, choices=lambda: sorted(METRICS)),
            "direction": Field(str, required=True, choices=["higher", "lower"]),
            "threshold": Field(float, default=None, allow_none=True, min=0.0),
            "absolute": Field(float, min=0.0, help="change in the metric's unit tolerated as well (default 0)"),
        })),
    }),
}


# ---------------------------------------------------------------- finding and parsing


def available_suites() -> dict[str, Path]:
    found = {p.stem: p for p in sorted(builtin_suite_dir().glob("*.yaml"))}
    local = Path.cwd() / "suites"
    if local.is_dir():
        found.update({p.stem: p for p in sorted(local.glob("*.yaml"))})
    return found


def resolve_suite_path(name_or_path: str) -> Path:
    from dgbench.validation import suite_file

    path = suite_file(name_or_path)
    if path is not None:
        return path
    suites = available_suites()
    if name_or_path not in suites:
        raise ConfigError(f"unknown suite {name_or_path!r}; {did_you_mean(name_or_path, list(suites))} "
                          "(see `dgbench list suites`)")
    return suites[name_or_path]


# ---------------------------------------------------------------- overrides

def _container_name(value) -> str:
    return {dict: "a mapping", list: "a list"}.get(type(value), f"{type(value).__name__} {value!r}"[:60])


def apply_overrides(data: dict, overrides: list[str], source: str) -> dict:
    """--set key.path=value, value parsed as YAML (so lists and numbers work). Lists index by number.
    Every step of the path is checked: a mapping takes a key, a list an index in range, and a scalar
    (`--set seed.x=1`) nothing, each refused with the step named."""
    data = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set sweep.gen_length=[32,64]")
        key, raw = item.split("=", 1)
        if len(raw) > MAX_SUITE_BYTES:
            raise ConfigError(f"--set {key}: the value is longer than {MAX_SUITE_BYTES // 1024} KiB")
        try:
            value, _ = load_yaml_text(raw, f"--set {key}")
        except yaml.YAMLError:
            raise ConfigError(f"--set {key}: cannot parse value {raw!r} as YAML") from None
        except RecursionError:
            raise ConfigError(f"--set {key}: value nested too deeply") from None
        names = key.strip().split(".")
        if any(not n for n in names):
            raise ConfigError(f"--set {key!r}: empty step in the key path; write e.g. --set measure.warmup=2")
        parts = [int(p) if p.isdigit() else p for p in names]
        target = data
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            where = ".".join(map(str, parts[:i])) or "the suite"
            if isinstance(target, list):
                if not isinstance(part, int) or part >= len(target):
                    raise ConfigError(f"--set {key}: {where} is a list of {len(target)}; give an index "
                                      f"0..{len(target) - 1}, not {part!r} ({source})")
            elif not isinstance(target, dict):
                raise ConfigError(f"--set {key}: {where} is {_container_name(target)}, not a mapping or list, so it "
                                  f"has no {part!r} inside; set {where} itself")
            if last:
                target[part] = value
                break
            nxt = parts[i + 1]
            if isinstance(target, dict) and (part not in target or target[part] is None):
                target[part] = [] if isinstance(nxt, int) else {}
            target = target[part]
    return data


# ---------------------------------------------------------------- validation

def _validate_decoders(suite: dict, loc: Location) -> None:
    engines = _engines()
    seen = set()
    sweep_knobs = suite["sweep"]["knobs"]
    all_knobs = {k for e in engines.values() for k in e.knobs}
    for axis in sweep_knobs:
        if axis not in all_knobs:
            raise ConfigError(f"{loc.at(('sweep', 'knobs', axis))}: sweep.knobs.{axis}: no engine has this knob; "
                              f"{did_you_mean(axis, sorted(all_knobs))}")
    for i, dec in enumerate(suite["decoders"]):
        if dec["name"] in seen:
            raise ConfigError(f"{loc.at(('decoders', i, 'name'))}: decoders[{i}].name: {dec['name']!r} is used twice; "
                              "decoder names label result rows and must be unique")
        seen.add(dec["name"])
        from dgbench.models.registry import get

        spec = get(point_model(dec))
        engine = engines[dec["engine"]]
        if spec.paradigm != engine.paradigm:
            raise ConfigError(f"{loc.at(('decoders', i, 'engine'))}: decoders[{i}]: engine {engine.name!r} decodes "
                              f"{engine.paradigm} models but {spec.name!r} is {spec.paradigm}")
        dec["knobs"] = validate_mapping(dec["knobs"], engine.knobs, loc, ("decoders", i, "knobs"))
        for axis, values in sweep_knobs.items():
            if axis in engine.knobs:
                for j, v in enumerate(values):
                    validate(v, engine.knobs[axis], loc, ("sweep", "knobs", axis, j))


def _resolve_decoders(suite: dict, loc: Location) -> None:
    """Each decoder's weights (dgbench.models.checkpoints), engine default, and the header notes."""
    from dgbench.models.checkpoints import default_engine, resolve_decoder

    notes = []
    for i, dec in enumerate(suite["decoders"]):
        engine = _engines().get(dec.get("engine"))
        spec, note = resolve_decoder(dec, f"{loc.at(('decoders', i, 'model'))}: decoders[{i}].model",
                                     engine.paradigm if engine else None)
        if spec.name != dec["model"]:
            dec["spec"] = spec.name
        if "engine" not in dec:
            dec["engine"] = default_engine(spec)
        if note:
            notes.append(note)
    if notes:
        suite["weights_notes"] = notes


def lint_suite(suite: dict, loc: Location) -> list[str]:
    """Run the decoder linter over every sweep point: errors raise, warnings are returned (deduplicated)."""
    from dgbench.backends import ENGINES
    from dgbench.harness.sweep import expand
    from dgbench.models.registry import get

    warnings: list[str] = []
    for point in expand(suite):
        i = next(j for j, d in enumerate(suite["decoders"]) if d["name"] == point.decoder)
        for finding in ENGINES[point.engine].factory.lint(get(point.model), point.knobs, point.gen_length):
            text = f"decoders[{i}] ({point.decoder}), gen_length={point.gen_length}: {finding.message}"
            if finding.level == "error":
                raise ConfigError(f"{loc.at(('decoders', i, 'knobs'))}: {text}")
            if text not in warnings:
                warnings.append(text)
    return warnings


def _validate_gate(suite: dict, loc: Location) -> None:
    for i, m in enumerate(suite["gate"]["metrics"]):
        if m["direction"] != direction(m["name"]):
            raise ConfigError(f"{loc.at(('gate', 'metrics', i, 'direction'))}: gate.metrics[{i}]: {m['name']} is "
                              f"{direction(m['name'])}-is-better by definition, not {m['direction']}")


COMPARE_FIELDS = {
    "margin": Field(float, min=0.0, help="non-inferiority margin: absolute accuracy loss tolerated (0.02 = 2 pp), "
                                        "or with margin_kind: relative the fraction of the reference kept (0.99)"),
    "margin_kind": Field(str, choices=["absolute", "relative"]),
}


def _validate_compare(suite: dict, loc: Location) -> None:
    """`compare:` has no defaults (absent stays absent, so config hashes hold); its keys are checked here."""
    if "compare" not in suite:
        return
    compare = validate_mapping(suite["compare"], COMPARE_FIELDS, loc, ("compare",))
    if compare.get("margin_kind") == "relative" and not 0 < compare.get("margin", 0.99) <= 1:
        raise ConfigError(f"{loc.at(('compare', 'margin'))}: compare.margin: with margin_kind: relative give the "
                          f"fraction of the reference accuracy to keep, in (0, 1] (MLPerf: 0.99), got "
                          f"{compare['margin']!r}")
    suite["compare"] = compare


def _validate_tasks(suite: dict, loc: Location) -> None:
    runs_tasks = for_suite(suite).runs_tasks
    if "tasks" not in suite:
        if runs_tasks:
            raise ConfigError(f"{loc.at(())}: tasks: scenario {suite['scenario']} needs at least one task "
                              f"({', '.join(TASKS)}), e.g. tasks: {{sudoku: {{size: 4}}}}")
        return
    if not runs_tasks:
        raise ConfigError(f"{loc.at(('tasks',))}: tasks: only scenario quality runs tasks; set scenario: quality "
                          "or remove the tasks section")
    tasks = {}
    for name, body in suite["tasks"].items():
        if name not in TASKS:
            raise ConfigError(f"{loc.at(('tasks', name))}: tasks.{name}: unknown task; "
                              f"{did_you_mean(name, list(TASKS))}")
        tasks[name] = validate(body if body is not None else {}, Field(dict, fields=TASKS[name].fields), loc,
                               ("tasks", name))
    if not tasks:
        raise ConfigError(f"{loc.at(('tasks',))}: tasks: needs at least one of {', '.join(TASKS)}")
    from dgbench.backends import ENGINES

    paradigms = [ENGINES[dec["engine"]].paradigm for dec in suite["decoders"]]
    for name, config in tasks.items():
        TASKS[name].check(config, suite, paradigms, loc)
    suite["tasks"] = tasks


def _validate_prompts(suite: dict, loc: Location) -> None:
    from dgbench.scenarios.prompts import check_source

    if suite.get("prompt_fit") and not suite.get("prompts"):
        raise ConfigError(f"{loc.at(('prompt_fit',))}: prompt_fit: needs a `prompts:` source")
    sources = [(("prompts",), suite.get("prompts"))] + [(("decoders", i, "prompts"), d.get("prompts"))
                                                        for i, d in enumerate(suite["decoders"])]
    for path, source in sources:
        if source is None:
            continue
        if for_suite(suite).runs_tasks:
            raise ConfigError(f"{loc.at(path)}: {'.'.join(map(str, path))}: quality suites take their prompts "
                              "from tasks; prompts: is for latency/throughput")
        if not isinstance(source, str):
            raise ConfigError(f"{loc.at(path)}: {'.'.join(map(str, path))}: expected a prompt source (synthetic, "
                              f"humaneval, sudoku, mc or a file path), got {type(source).__name__}; the mapping "
                              "form {source: ...} is for scenario: serve")
        check_source(source, f"{loc.at(path)}: {'.'.join(map(str, path))}")


def validate_suite(data: dict, loc: Location) -> dict:
    suite = validate_mapping(data, SUITE_FIELDS, loc)
    scenario = for_suite(suite)
    for other in SCENARIOS.values():   # a section only another scenario reads is a mistake, not a no-op
        for key in other.suite_sections if other is not scenario else ():
            if key in suite:
                raise ConfigError(f"{loc.at((key,))}: {key}: only scenario {other.suite_names[0]} reads this "
                                  f"section; set scenario: {other.suite_names[0]} or remove it")
    if scenario.loads_model and suite.get("decoders"):
        _resolve_decoders(suite, loc)   # engines and specs from checkpoints first: the checks below read them
    scenario.validate(suite, loc)
    _validate_tasks(suite, loc)
    _validate_compare(suite, loc)
    seeds = suite.get("seeds")
    if seeds is not None and len(set(seeds)) != len(seeds):
        raise ConfigError(f"{loc.at(('seeds',))}: seeds: {seeds} repeats a seed; list each seed once")
    if not scenario.loads_model:
        return suite
    _validate_prompts(suite, loc)
    if "decoders" not in suite:
        raise ConfigError(f"{loc.at(())}: decoders: required key is missing ({DECODERS_HELP})")
    if not suite["decoders"]:
        raise ConfigError(f"{loc.at(('decoders',))}: decoders: at least one decoder is needed")
    m = suite["measure"]
    if m["max_repetitions"] < m["min_repetitions"]:
        raise ConfigError(f"{loc.at(('measure', 'max_repetitions'))}: measure.max_repetitions "
                          f"({m['max_repetitions']}) is below min_repetitions ({m['min_repetitions']})")
    _validate_decoders(suite, loc)
    _validate_gate(suite, loc)
    check_address(suite["executor"]["address"], f"{loc.at(('executor', 'address'))}: executor.address")
    suite["lint_warnings"] = lint_suite(suite, loc)
    return suite


def load_suite(name_or_path: str, overrides: list[str] | None = None) -> dict:
    """The resolved, validated suite as plain data (what run.json stores)."""
    path = resolve_suite_path(name_or_path)
    data, loc = parse_yaml(path)
    if overrides:
        data = apply_overrides(data, overrides, str(path))
        loc = Location(f"{path} (with --set)", loc.lines)
    suite = validate_suite(data, loc)
    suite["source"] = str(path)
    return suite

