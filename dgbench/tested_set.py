"""The tested set: the package versions dgbench's tests last passed with (constraints.txt), and how the
running environment differs from it.

A benchmark's numbers move with the libraries under it (a transformers release changed the engine's
calling convention once already), so every run records the versions that matter and says, in run.json and
on the report, when they are not the tested ones.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

CONSTRAINTS = Path(__file__).resolve().parent / "_data" / "constraints.txt"

# What a run records: the packages its numbers depend on (torch is pinned outside the file: TORCH_SPEC).
RECORDED = ("torch", "transformers", "tokenizers", "huggingface_hub", "safetensors", "accelerate", "lm_eval",
            "numpy", "nvidia-ml-py")

_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)")


def canonical(name: str) -> str:
    """PEP 503 name normalisation, so `lm_eval`, `lm-eval` and `LM.Eval` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path = CONSTRAINTS) -> dict[str, str]:
    """{canonical name: version} of every `name==version` line; empty when the file is not installed."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    return {canonical(m.group(1)): m.group(2) for m in map(_PIN.match, text.splitlines()) if m}


def installed(names=RECORDED) -> dict[str, str]:
    """Installed versions of `names` (missing packages left out)."""
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def differences(versions: dict[str, str], tested: dict[str, str] | None = None) -> dict[str, dict]:
    """{package: {"installed": v, "tested": w}} for each recorded package pinned to another version."""
    tested = pins() if tested is None else tested
    out = {}
    for name, version in versions.items():
        want = tested.get(canonical(name))
        if want is not None and want != version:
            out[name] = {"installed": version, "tested": want}
    return out


def describe(diff: dict[str, dict]) -> str | None:
    """The one line a run header and a report print, or None when the set is the tested one."""
    if not diff:
        return None
    parts = ", ".join(f"{name} {d['installed']} (tested {d['tested']})" for name, d in sorted(diff.items()))
    return f"measured on an untested set: {parts}"
