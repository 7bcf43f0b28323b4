"""Untrusted names (decoder names, model output, folder names) made safe for a terminal or markdown.

A name from a suite file or a results directory may hold ANSI/OSC escapes (which retitle, clear or
rewrite a terminal), carriage returns that overprint a line, or bidi overrides that reorder what is
shown. Everything printed to a terminal or written into markdown goes through `clean` first; the
characters are escaped as visible `\\xNN` / `\\uNNNN` text rather than dropped, so a reader still
sees that the name held something odd. Imports nothing heavy: report/ and gate/ use it.
"""

from __future__ import annotations

import re
import unicodedata

# Bidi embeddings/overrides/isolates and zero-width characters: not control characters by category
# (they are Cf), but they change what a terminal or a rendered table shows (CVE-2021-42574, "Trojan source").
_INVISIBLE = {0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E,
              0x2066, 0x2067, 0x2068, 0x2069, 0xFEFF}


def _escape_char(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _unsafe(ch: str) -> bool:
    code = ord(ch)
    if code in _INVISIBLE:
        return True
    cat = unicodedata.category(ch)
    return cat in ("Cc", "Cs", "Co") or cat == "Zl" or cat == "Zp"


def clean(value: object) -> str:
    """str(value) with every control, line-breaking, bidi and zero-width character escaped."""
    text = str(value)
    if text.isprintable() and not any(ord(c) in _INVISIBLE for c in text):
        return text
    return "".join(_escape_char(c) if _unsafe(c) else c for c in text)


def one_line(value: object) -> str:
    """A message for one line of stderr: newlines shown as ' | ', other control characters escaped."""
    text = str(value).replace("\r\n", "\n").strip("\n")
    return " | ".join(clean(part) for part in text.split("\n"))


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def md(value: object) -> str:
    """Text for a markdown cell or line: cleaned, then markdown's own syntax characters backslash-escaped
    (so a name cannot close a table cell, open a link or inject HTML)."""
    return _MD_SPECIAL.sub(r"\\\1", clean(value))


def markup(value: object) -> str:
    """Text for a rich Console/Table: cleaned, then rich's own [markup] escaped."""
    from rich.markup import escape

    return escape(clean(value))
