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
from dgbench.scenarios.base import SCENARIOS, for_suite, suite_scenarios
from dgbench.scenarios.generation import COMMON_AXES  # noqa: F401  (re-exported)
from dgbench.tasks import TASKS
from dgbench.tasks.lm_eval import builtin_suite_dir
from dgbench.validation import Field, Location, did_you_mean, validate, validate_mapping

DTYPES = ["auto", "float32", "bfloat16", "float16"]


def _engines():
    from dgbench.backends import ENGINES

    return ENGINES


def _model_names():
    from dgbench.models.registry import names

    return names()


DECODER = Field(dict, fields={
    "name": Field(str, required=True, help="row label, unique in the suite, e.g. 'diffusion'"),
    "model": Field(str, required=True, choices=_model_names, help="a name from `dgbench list models`"),
    "engine": Field(str, required=True, choices=lambda: sorted(_engines()),
                    help="a decoding engine from `dgbench list engines`"),
    "knobs": Field(dict, default=dict),
    "dtype": Field(str, default="auto", choices=DTYPES),
    # No default, so decoders without it keep their config hash (see "tasks" below).
    "prompts": Field(str, choices=["sudoku"],
                     help="latency/throughput: time on real task prompts (sudoku: the quality suite's 4x4 puzzles) "
                          "instead of random ids; prompt_length is then theirs"),
})

DECODERS_HELP = "a list of {name, model, engine, knobs}"

SUITE_FIELDS = {
    "name": Field(str, required=True),
    "description": Field(str, default=""),
    "scenario": Field(str, default="latency", choices=suite_scenarios),   # registered in scenarios/
    "seed": Field(int, default=0),
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
    "prompts": Field(dict, help="{source: task|file|synthetic, ...}"),
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
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or "/" in name_or_path:
        if not path.is_file():
            raise ConfigError(f"{name_or_path}: suite file not found; give a path to a .yaml file or a name "
                              f"from `dgbench list suites`")
        return path
    suites = available_suites()
    if name_or_path not in suites:
        raise ConfigError(f"unknown suite {name_or_path!r}; {did_you_mean(name_or_path, list(suites))} "
                          "(see `dgbench list suites`)")
    return suites[name_or_path]


def _line_map(node, path=(), out=None) -> dict:
    out = {} if out is None else out
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out[path + (key.value,)] = key.start_mark.line + 1
            _line_map(value, path + (key.value,), out)
            out[path + (key.value,)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_map(item, path + (i,), out)
    return out


def parse_yaml(path: Path) -> tuple[dict, Location]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path}{line}: YAML syntax error: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a suite is a YAML mapping with at least 'name' and 'decoders'")
    return data, Location(str(path), _line_map(node) if node is not None else {})


# ---------------------------------------------------------------- overrides

def apply_overrides(data: dict, overrides: list[str], source: str) -> dict:
    """--set key.path=value, value parsed as YAML (so lists and numbers work). Lists index by number."""
    data = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set sweep.gen_length=[32,64]")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ConfigError(f"--set {key}: cannot parse value {raw!r} as YAML") from None
        parts = [int(p) if p.isdigit() else p for p in key.strip().split(".")]
        target = data
        for i, part in enumerate(parts[:-1]):
            nxt = parts[i + 1]
            if isinstance(target, list):
                if not isinstance(part, int) or part >= len(target):
                    raise ConfigError(f"--set {key}: index {part} out of range in {source}")
                target = target[part]
            else:
                if part not in target or target[part] is None:
                    target[part] = [] if isinstance(nxt, int) else {}
                target = target[part]
        last = parts[-1]
        if isinstance(target, list):
            if not isinstance(last, int) or last >= len(target):
                raise ConfigError(f"--set {key}: index {last} out of range in {source}")
        target[last] = value
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
        engine = engines[dec["engine"]]
        from dgbench.models.registry import get

        spec = get(dec["model"])
        if spec.paradigm != engine.paradigm:
            raise ConfigError(f"{loc.at(('decoders', i, 'engine'))}: decoders[{i}]: engine {engine.name!r} decodes "
                              f"{engine.paradigm} models but {spec.name!r} is {spec.paradigm}")
        dec["knobs"] = validate_mapping(dec["knobs"], engine.knobs, loc, ("decoders", i, "knobs"))
        for axis, values in sweep_knobs.items():
            if axis in engine.knobs:
                for j, v in enumerate(values):
                    validate(v, engine.knobs[axis], loc, ("sweep", "knobs", axis, j))


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


def validate_suite(data: dict, loc: Location) -> dict:
    suite = validate_mapping(data, SUITE_FIELDS, loc)
    scenario = for_suite(suite)
    for other in SCENARIOS.values():   # a section only another scenario reads is a mistake, not a no-op
        for key in other.suite_sections if other is not scenario else ():
            if key in suite:
                raise ConfigError(f"{loc.at((key,))}: {key}: only scenario {other.suite_names[0]} reads this "
                                  f"section; set scenario: {other.suite_names[0]} or remove it")
    scenario.validate(suite, loc)
    _validate_tasks(suite, loc)
    if not scenario.loads_model:
        return suite
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

