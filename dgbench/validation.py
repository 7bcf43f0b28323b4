"""A small strict validator for nested YAML data: unknown keys get "did you mean", wrong types name the field.

Kept generic (a table of Field rules) so the suite schema reads as data, not as a chain of ifs.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dgbench.errors import ConfigError

_MISSING = object()

# Integers without their own bound stay within a signed 64-bit value: torch and numpy take no more, and a
# 10**22 would otherwise pass validation and fail every point at run time.
INT_MAX = 2**63 - 1

_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
               list: "a list", dict: "a mapping"}


@dataclass(frozen=True)
class Field:
    """One key of a mapping: its type, default, allowed values and nested rules."""

    type: type
    required: bool = False
    default: Any = _MISSING
    choices: Callable[[], list] | list | None = None  # a callable lets registries fill in lazily
    fields: dict[str, "Field"] | None = None          # for a mapping with known keys
    item: "Field | None" = None                        # for a list, the rule of each element
    values: "Field | None" = None                      # for a mapping with free keys, the rule of each value
    scalar_ok: bool = False                            # a list field that also takes one scalar
    min: float | None = None
    max: float | None = None   # unset for an integer: INT_MAX below
    allow_inf: bool = False    # +inf is a value here (serve: request_rate inf = no pacing); NaN never is
    help: str = ""
    allow_none: bool = False


@dataclass
class Location:
    """Where a value came from, for error messages: the file and a path-to-line map."""

    source: str
    lines: dict[tuple, int] = field(default_factory=dict)

    def at(self, path: tuple) -> str:
        # Use the nearest ancestor that has a line: an absent key is reported at its parent mapping.
        for i in range(len(path), -1, -1):
            if path[:i] in self.lines:
                return f"{self.source}:{self.lines[path[:i]]}"
        return self.source


def dotted(path: tuple) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<top level>"


def _type_ok(value: Any, expected: type) -> bool:
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def did_you_mean(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.5)
    if close:
        return f"did you mean '{close[0]}'?"
    return "allowed: " + ", ".join(sorted(str(o) for o in options))


def validate(value: Any, rule: Field, loc: Location, path: tuple = ()) -> Any:
    """Return the value with defaults filled in, or raise ConfigError naming file:line, field and fix."""
    where = loc.at(path)
    name = dotted(path)
    if value is None and rule.allow_none:
        return None
    if rule.type is list and rule.scalar_ok and not isinstance(value, list):
        value = [value]
    if not _type_ok(value, rule.type):
        got = type(value).__name__ if value is not None else "nothing"
        raise ConfigError(f"{where}: {name}: expected {_TYPE_NAMES.get(rule.type, rule.type.__name__)}"
                          f"{' (or a list of them)' if rule.scalar_ok else ''}, got {got} ({value!r})")
    if isinstance(value, float) and not math.isfinite(value) and not (rule.allow_inf and value == math.inf):
        raise ConfigError(f"{where}: {name}: must be a finite number, got {value!r}")
    if isinstance(value, str) and not value.isprintable():
        from dgbench.textsafe import clean

        raise ConfigError(f"{where}: {name}: contains control or line-break characters ({clean(value)[:60]}); "
                          "use printable text")
    if rule.choices is not None:
        choices = rule.choices() if callable(rule.choices) else rule.choices
        if value not in choices:
            raise ConfigError(f"{where}: {name}: unknown value {value!r}; {did_you_mean(value, choices)}")
    if rule.min is not None and _type_ok(value, float) and value < rule.min:
        raise ConfigError(f"{where}: {name}: must be at least {rule.min}, got {value!r}")
    upper = rule.max if rule.max is not None else (INT_MAX if rule.type is int else None)
    if upper is not None and _type_ok(value, float) and value > upper:
        raise ConfigError(f"{where}: {name}: must be at most {upper}, got {value!r}")
    if rule.type is int and rule.min is None and _type_ok(value, int) and value < -INT_MAX - 1:
        raise ConfigError(f"{where}: {name}: must be at least {-INT_MAX - 1}, got {value!r}")
    if rule.type is list:
        if rule.scalar_ok and not value:
            raise ConfigError(f"{where}: {name}: needs at least one value")
        if rule.item is not None:
            return [validate(v, rule.item, loc, path + (i,)) for i, v in enumerate(value)]
        return [_free(v, loc, path + (i,)) for i, v in enumerate(value)]
    if rule.type is dict:
        if rule.fields is not None:
            return validate_mapping(value, rule.fields, loc, path)
        if rule.values is not None:
            return {k: validate(v, rule.values, loc, path + (k,)) for k, v in value.items()}
        return {k: _free(v, loc, path + (k,)) for k, v in value.items()}
    return value


def _free(value: Any, loc: Location, path: tuple) -> Any:
    """A value without a rule of its own (inside a free-form list or mapping): still finite, in range,
    printable, with string keys."""
    if isinstance(value, dict):
        for k in value:
            if not isinstance(k, str):
                raise ConfigError(f"{loc.at(path)}: {dotted(path)}: key {k!r} is not a string; quote it")
        return {k: _free(v, loc, path + (k,)) for k, v in value.items()}
    if isinstance(value, list):
        return [_free(v, loc, path + (i,)) for i, v in enumerate(value)]
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return validate(value, Field(type(value)), loc, path)
    return value


def validate_mapping(data: dict, fields: dict[str, Field], loc: Location, path: tuple = ()) -> dict:
    if not isinstance(data, dict):
        raise ConfigError(f"{loc.at(path)}: {dotted(path)}: expected a mapping, got {type(data).__name__}")
    for key in data:
        if key not in fields:
            raise ConfigError(f"{loc.at(path + (key,))}: {dotted(path + (key,))}: unknown key; "
                              f"{did_you_mean(key, list(fields))}")
    out = {}
    for key, rule in fields.items():
        if key in data:
            out[key] = validate(data[key], rule, loc, path + (key,))
        elif rule.required:
            raise ConfigError(f"{loc.at(path)}: {dotted(path + (key,))}: required key is missing"
                              f"{' (' + rule.help + ')' if rule.help else ''}")
        elif rule.default is not _MISSING:
            out[key] = rule.default() if callable(rule.default) else rule.default
        elif rule.fields is not None:
            out[key] = validate_mapping({}, rule.fields, loc, path + (key,))
    return out


def suite_file(name_or_path: str):
    """A suite given as a file (a .yaml/.yml name or anything with a '/'): its Path, refused in one line when
    missing; None for a suite name (resolved by the caller's registry). One rule for `run`, `gate --measure`
    and every other command that takes --suite."""
    from pathlib import Path

    from dgbench.errors import ConfigError

    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or "/" in name_or_path:
        if not path.is_file():
            raise ConfigError(f"{name_or_path}: suite file not found; give a path to a .yaml file or a name "
                              "from `dgbench list suites`")
        return path
    return None
