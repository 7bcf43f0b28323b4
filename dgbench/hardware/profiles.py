"""Hardware profiles: peak compute and bandwidth of a device, each number with its source.

A profile file names every number's origin under `sources:` (key = the field, e.g. `peak_flops.bf16`,
`memory_bandwidth_bytes_s`), or `all:` for one source covering the file. A number without a source is
refused on load: the roofline's ceilings are only as good as where they came from. Unknown numbers are
written as null (never guessed) and the roofline then says it cannot project onto that profile.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from dgbench.errors import ConfigError

DTYPES = ("fp32", "tf32", "bf16", "fp8", "fp4")
NUMBER_FIELDS = ("memory_bytes", "memory_bandwidth_bytes_s", "power_limit_w")


def profile_dir() -> Path:
    return Path(str(resources.files("dgbench") / "_data" / "hardware_profiles"))


def _check(path: Path, data: dict) -> None:
    if not isinstance(data, dict) or "name" not in data:
        raise ConfigError(f"{path}: a profile is a YAML mapping with at least 'name' and 'kind'")
    peaks = data.get("peak_flops") or {}
    for key in peaks:
        if key not in DTYPES:
            raise ConfigError(f"{path}: peak_flops.{key}: unknown dtype; use one of {', '.join(DTYPES)}")
    numbers = {**{f"peak_flops.{k}": v for k, v in peaks.items()}, **{k: data.get(k) for k in NUMBER_FIELDS}}
    sources = data.get("sources") or {}
    for key, value in numbers.items():
        if value is None:
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            # PyYAML reads 3.35e12 as a string (YAML 1.1 wants 3.35e+12): refuse rather than mis-plot.
            raise ConfigError(f"{path}: {key}: expected a number, got {value!r}; write exponents as 3.35e+12")
        if key not in sources and "all" not in sources:
            raise ConfigError(f"{path}: {key}: has no source; add `sources: {{{key}: \"<datasheet, URL, figure>\"}}` "
                              "or set the number to null")


def load_profiles() -> dict[str, dict]:
    profiles = {}
    for path in sorted(profile_dir().glob("*.yaml")):
        from dgbench.safe_yaml import load_yaml_text, read_suite_text

        try:  # bounded like a suite: a profile folder may come from anywhere (./hardware_profiles)
            data, _ = load_yaml_text(read_suite_text(path), str(path))
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: YAML syntax error: {e}") from None
        _check(path, data)
        profiles[data["name"]] = {**data, "file": str(path)}
    return profiles


def get_profile(name: str, profiles: dict[str, dict] | None = None) -> dict:
    from dgbench.validation import did_you_mean

    profiles = load_profiles() if profiles is None else profiles
    if name not in profiles:
        raise ConfigError(f"unknown profile {name!r}; {did_you_mean(name, sorted(profiles))} "
                          "(see `dgbench list profiles`)")
    return profiles[name]


def match_profile(fp: dict, profiles: dict[str, dict] | None = None) -> str | None:
    """The profile whose `match` patterns appear in the GPU name (or the CPU model on a CPU run)."""
    profiles = load_profiles() if profiles is None else profiles
    target = (fp.get("gpu_name") or fp.get("cpu_model") or "").lower()
    kind = "gpu" if fp.get("gpu_name") else "cpu"
    best = None
    for name, prof in profiles.items():
        if prof.get("kind") not in (kind, "soc"):
            continue
        for pattern in prof.get("match", []):
            if pattern.lower() in target and (best is None or len(pattern) > best[1]):
                best = (name, len(pattern))
    if best:
        return best[0]
    return "generic-x86-cpu" if kind == "cpu" and "generic-x86-cpu" in profiles else None
