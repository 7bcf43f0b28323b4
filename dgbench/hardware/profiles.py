"""Hardware profiles: peak compute and bandwidth of a device, each number with its source."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from dgbench.errors import ConfigError


def profile_dir() -> Path:
    return Path(str(resources.files("dgbench") / "_data" / "hardware_profiles"))


def load_profiles() -> dict[str, dict]:
    profiles = {}
    for path in sorted(profile_dir().glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: YAML syntax error: {e}") from None
        for key, value in {**(data.get("peak_flops") or {}),
                           "memory_bandwidth_bytes_s": data.get("memory_bandwidth_bytes_s")}.items():
            if value is not None and not isinstance(value, (int, float)):
                # PyYAML reads 3.35e12 as a string (YAML 1.1 wants 3.35e+12): refuse rather than mis-plot.
                raise ConfigError(f"{path}: {key}: expected a number, got {value!r}; write exponents as 3.35e+12")
        profiles[data["name"]] = {**data, "file": str(path)}
    return profiles


def match_profile(fp: dict, profiles: dict[str, dict] | None = None) -> str | None:
    """The profile whose `match` patterns appear in the GPU name (or the CPU model on a CPU run)."""
    profiles = load_profiles() if profiles is None else profiles
    target = (fp.get("gpu_name") or fp.get("cpu_model") or "").lower()
    kind = "gpu" if fp.get("gpu_name") else "cpu"
    best = None
    for name, prof in profiles.items():
        if prof.get("kind") != kind:
            continue
        for pattern in prof.get("match", []):
            if pattern.lower() in target and (best is None or len(pattern) > best[1]):
                best = (name, len(pattern))
    if best:
        return best[0]
    return "generic-x86-cpu" if kind == "cpu" and "generic-x86-cpu" in profiles else None
