"""Reading YAML input safely (suites, --set values, hardware profiles): a size cap, UTF-8 with the line
of a bad byte, one parse with aliases refused and nesting bounded, and a path-to-line map for error
messages. Imports nothing of dgbench's above errors/validation, so any layer may use it.

Limits on a suite file (a real one is a few KB): bigger, deeper or aliased input is refused before it
can cost minutes or gigabytes (a 500-byte alias bomb expands to gigabytes; 20,000 nested brackets
overflow the composer's stack; a self-referencing alias recurses forever in the line map).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from dgbench.errors import ConfigError
from dgbench.validation import Location

MAX_SUITE_BYTES = 1 << 20
MAX_YAML_DEPTH = 50


def _line_map(node, path=(), out=None) -> dict:
    out = {} if out is None else out
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            # A complex key ([a]: b) has a list as its value; it is refused by validation, named by its text.
            name = key.value if isinstance(key, yaml.ScalarNode) else f"<{key.tag.rsplit(':', 1)[-1]} key>"
            out[path + (name,)] = key.start_mark.line + 1
            _line_map(value, path + (name,), out)
            out[path + (name,)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_map(item, path + (i,), out)
    return out


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases and with a nesting bound. An alias can refer to itself
    (endless recursion) or fan out ("billion laughs": 500 bytes, gigabytes of data), and each nesting
    level costs a stack frame in the composer; a suite needs neither."""

    source = "<input>"

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise ConfigError(f"{self.source}:{event.start_mark.line + 1}: YAML alias *{event.anchor} is not "
                              "allowed (aliases can expand without bound); write the value out")
        self._depth += 1
        if self._depth > MAX_YAML_DEPTH:
            mark = self.peek_event().start_mark
            raise ConfigError(f"{self.source}:{mark.line + 1}: nested deeper than {MAX_YAML_DEPTH} levels; a suite "
                              "needs a few, flatten it")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_yaml_text(text: str, source: str):
    """(data, root node) of one YAML document, parsed once with aliases refused and depth bounded."""
    loader = _BoundedLoader(text)
    loader.source = source
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return data, node


def _yaml_error(e: yaml.YAMLError, source: str) -> ConfigError:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    line = f":{mark.line + 1}" if mark else ""
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    return ConfigError(f"{source}{line}: YAML syntax error: {problem}")


def read_suite_text(path: Path) -> str:  # any YAML input file, not only suites
    """The file's text, refused when over MAX_SUITE_BYTES or not UTF-8 (with the line of the first bad byte)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_SUITE_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    if len(raw) > MAX_SUITE_BYTES:
        raise ConfigError(f"{path}: larger than the {MAX_SUITE_BYTES // 1024} KiB a suite file may be; a suite is "
                          "a few KB of YAML, check that this is the right file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[e.start]:02x}); save the suite as UTF-8") from None


def parse_yaml(path: Path) -> tuple[dict, Location]:
    text = read_suite_text(path)
    try:
        data, node = load_yaml_text(text, str(path))
    except yaml.YAMLError as e:
        raise _yaml_error(e, str(path)) from None
    except RecursionError:  # a guard behind the depth bound (e.g. a deep flow collection in one scalar)
        raise ConfigError(f"{path}: nested too deeply to read; flatten it") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a suite is a YAML mapping with at least 'name' and 'decoders'")
    return data, Location(str(path), _line_map(node) if node is not None else {})
