"""The shape of run.json and of each points.jsonl / samples.jsonl record, checked on every read.

Readers (resume, report, gate, export) index these records freely; a file that is a list, lacks
`suite` or `point_id`, or holds a string where a number belongs would otherwise end in a
KeyError/TypeError deep inside them. Checking the shape once, where the file is read, turns it into
one ResultsError naming the file, the line and the key. Rules are data: a type (or tuple of types),
a mapping {key: rule} ("key?" = optional; "*" = rule of any other key), or a list/map rule.
Imports no torch.
"""

from __future__ import annotations

from dgbench.errors import ResultsError

NUM = (int, float)
OPT_NUM = (int, float, type(None))
OPT_STR = (str, type(None))


class ListOf:
    def __init__(self, item, none_ok: bool = False):
        self.item = item
        self.none_ok = none_ok   # null allowed (lm-eval points without per-document results)


class MapOf:
    def __init__(self, value):
        self.value = value


STATS = {"n?": int, "median?": OPT_NUM, "p10?": OPT_NUM, "p90?": OPT_NUM, "mean?": OPT_NUM,
         "std?": OPT_NUM, "cv?": OPT_NUM, "*": object}

SUITE = {"name?": str, "scenario?": str, "seed?": int,
         "decoders?": ListOf({"name": str, "model": str, "engine?": str, "knobs?": dict, "*": object}),
         "sweep?": dict, "measure?": dict, "gate?": {"threshold?": OPT_NUM, "alpha?": OPT_NUM,
                                                       "metrics?": ListOf({"name": str, "direction?": str,
                                                                           "threshold?": OPT_NUM,
                                                                           "absolute?": OPT_NUM, "*": object}),
                                                       "*": object},
         "tasks?": dict, "source?": str, "*": object}

RUN = {"schema_version": int, "suite": SUITE, "suite_name?": str, "config_hash?": str, "status?": str,
       "seed?": int, "hardware?": {"device?": str, "*": object}, "versions?": dict, "created_utc?": str,
       "finished_utc?": str, "resumed_utc?": ListOf(str), "telemetry?": dict, "roofline_profile?": dict,
       "hardware_profile?": OPT_STR, "weights?": OPT_STR, "*": object}

# Only point_id is required (hand-written and older records carry little else); read_jsonl fills in
# decoder and model as "?" when absent, since every table keys its rows by them.
POINT = {"point_id": str, "status?": str, "decoder?": str, "model?": str, "engine?": str, "dtype?": str,
         "paradigm?": str, "params?": MapOf(object), "knobs?": dict, "reps?": MapOf(ListOf(OPT_NUM)),
         "pooled?": MapOf(ListOf(OPT_NUM)), "summary?": MapOf(STATS), "memory?": (dict, type(None)),
         "error?": {"kind?": str, "message?": str, "*": object}, "telemetry?": (dict, type(None)),
         "roofline?": (dict, type(None)), "wall_s?": OPT_NUM, "correct?": ListOf((bool, int, type(None)), none_ok=True),
         "item_ids?": ListOf((str, int), none_ok=True), "quality?": (dict, type(None)), "*": object}

# What `run --resume` needs beyond RUN: the resolved suite it re-expands and the run's identity.
RESUMABLE = {"config_hash": str, "hardware": {"device": str, "*": object},
             "suite": {"name": str, "scenario": str, "seed": int, "decoders": list, "sweep": dict, "measure": dict,
                       "*": object}, "*": object}

SAMPLE = {"point_id": str, "*": object}


def _type_name(t) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true/false", dict: "a mapping",
             list: "a list", type(None): "null", object: "anything"}
    if isinstance(t, tuple):
        return " or ".join(dict.fromkeys(names.get(x, x.__name__) for x in t))
    return names.get(t, getattr(t, "__name__", str(t)))


def _where(path: tuple) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "the top level"


def check(value, rule, path: tuple = ()) -> str | None:
    """The first place where `value` breaks `rule`, in words, or None when it fits."""
    if isinstance(rule, dict):
        if not isinstance(value, dict):
            return f"{_where(path)}: expected a mapping, got {type(value).__name__}"
        for key, sub in rule.items():
            if key == "*":
                continue
            name, optional = (key[:-1], True) if key.endswith("?") else (key, False)
            if name not in value:
                if not optional:
                    return f"{_where(path + (name,))}: required key is missing"
                continue
            problem = check(value[name], sub, path + (name,))
            if problem:
                return problem
        return None
    if isinstance(rule, ListOf):
        if value is None and rule.none_ok:
            return None
        if not isinstance(value, list):
            return f"{_where(path)}: expected a list, got {type(value).__name__}"
        for i, item in enumerate(value):
            problem = check(item, rule.item, path + (i,))
            if problem:
                return problem
        return None
    if isinstance(rule, MapOf):
        if not isinstance(value, dict):
            return f"{_where(path)}: expected a mapping, got {type(value).__name__}"
        for key, item in value.items():
            problem = check(item, rule.value, path + (key,))
            if problem:
                return problem
        return None
    types = rule if isinstance(rule, tuple) else (rule,)
    if object in types:
        return None
    # bool is an int in Python; a true/false is not a number here unless the rule names bool.
    if isinstance(value, bool) and bool not in types:
        return f"{_where(path)}: expected {_type_name(rule)}, got true/false"
    if not isinstance(value, types):
        shown = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
        return f"{_where(path)}: expected {_type_name(rule)}, got {shown[:60]}"
    return None


def require(value, rule, where: str, fix: str = "") -> None:
    """Raise a ResultsError naming `where` (file or file:line) when `value` does not fit `rule`."""
    problem = check(value, rule)
    if problem:
        raise ResultsError(f"{where}: {problem}; " + (fix or "the file was not written by this dgbench or "
                                                            "was edited; restore it or re-run"))
