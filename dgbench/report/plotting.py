"""Matplotlib plumbing for the report figures: Agg only, no pyplot state, one PNG file per figure.

Figures are built on `matplotlib.figure.Figure` directly (not pyplot), so rendering many reports in
one process leaks no global figure state and needs no display. Labels drawn from results files
(decoder names are user input) are drawn with mathtext off: a `$` in a name is text, not a formula
that could fail to parse.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # never a GUI backend, whatever the environment says

from matplotlib.figure import Figure  # noqa: E402

FIGURE_DIR = "figures"
DPI = 100
# Colour-blind-safe Okabe-Ito palette; a decoder keeps its colour across every figure of a report.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]


@dataclass
class Fig:
    id: str
    title: str
    src: str          # path relative to the page that shows it
    caption: str
    alt: str


class Colors:
    """Stable colour and marker per label (decoder or run) in first-seen order."""

    def __init__(self, labels=()):
        self._index: dict[str, int] = {}
        for label in labels:
            self.index(label)

    def index(self, label: str) -> int:
        return self._index.setdefault(label, len(self._index))

    def color(self, label: str) -> str:
        return PALETTE[self.index(label) % len(PALETTE)]

    def marker(self, label: str) -> str:
        return MARKERS[self.index(label) % len(MARKERS)]


@contextmanager
def figure(width: float = 8.0, height: float = 4.5):
    with matplotlib.rc_context({"text.parse_math": False, "font.size": 9, "axes.grid": True,
                                "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False}):
        yield Figure(figsize=(width, height), dpi=DPI)


def safe_name(text: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-")[:60] or "figure"


def save(fig: Figure, out_dir: Path, name: str, title: str, caption: str, stamp: str, alt: str = "",
         prefix: str = "") -> Fig:
    """Stamp the hardware fingerprint under the figure, write figures/<name>.png, and describe it."""
    fig.text(0.005, 0.005, stamp, fontsize=6.5, color="#555555", ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    name = safe_name(name)
    (out_dir / FIGURE_DIR).mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / FIGURE_DIR / f"{name}.png", dpi=DPI)
    return Fig(id=name, title=title, src=f"{prefix}{FIGURE_DIR}/{name}.png", caption=caption, alt=alt or title)


def categorical(values: list) -> tuple[list[float], list[str] | None]:
    """x positions for sweep values: the numbers themselves, or 0..n-1 with tick labels for text values."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return [float(v) for v in values], None
    uniq = list(dict.fromkeys(str(v) for v in values))
    return [float(uniq.index(str(v))) for v in values], uniq


def errorbar(ax, xs, summaries, scale, color, marker, label):
    """Median with p10-p90 bars, sorted by x."""
    rows = sorted(zip(xs, summaries), key=lambda r: r[0])
    x = [r[0] for r in rows]
    med = [r[1]["median"] * scale for r in rows]
    lo = [max(0.0, (r[1]["median"] - r[1]["p10"]) * scale) for r in rows]
    hi = [max(0.0, (r[1]["p90"] - r[1]["median"]) * scale) for r in rows]
    ax.errorbar(x, med, yerr=[lo, hi], color=color, marker=marker, capsize=3, label=label, linewidth=1.2,
                markersize=5)
