"""The package's import graph, read from the source with `ast` (nothing is imported): arrows point down
the layers (cli -> harness -> scenarios -> integrations -> backends/tasks/telemetry/hardware -> models ->
decoding; report and gate sit beside the base modules), there is no import circle between modules, and
the torch-free parts (report/, gate/, results.py) name neither torch nor transformers, not even lazily.

Every import counts, also those inside functions: a lazy import still makes a circle in the design,
and still loads torch when the function runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "dgbench"

# Layer of each top-level package or module; a module may import only from strictly lower layers (or its
# own package). Modules at layer 0 (the shared base) may import each other, circles aside.
LAYERS = {
    "cli": 9, "serving": 8.5, "harness": 8, "scenarios": 7, "integrations": 6, "training": 5,
    "backends": 4, "tasks": 4, "telemetry": 4, "hardware": 4,
    "models": 3, "decoding": 2, "report": 1.5, "gate": 1,
    "metadata": 0, "tested_set": 0, "compat": 0, "results": 0, "metrics": 0, "stats": 0, "validation": 0,
    "errors": 0, "__init__": 0,
}
# Arrows that go up today, each with the reason it is allowed; the test fails when one disappears (so
# the list only shrinks) as well as on any new one.
ALLOWED_UPWARD = {
    ("dgbench.models.registry", "dgbench.training.backbone"):
        "the reference pair's spec reads the training backbone's config (pure data, no torch)",
}
TORCH_FREE = ("dgbench.report", "dgbench.gate", "dgbench.results")
HEAVY = ("torch", "transformers")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Absolute module names this file imports (`from a import b` counts a.b when a.b is a module)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{alias.name}" for alias in node.names}
    return out


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in imports_of(path) if m in files and m != name} | {m for m in imports_of(path)
                                                                                if m.split(".")[0] in HEAVY}
            for name, path in files.items()}


def layer(module: str) -> float:
    parts = module.split(".")
    return LAYERS[parts[1] if len(parts) > 1 else "__init__"]


def top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def upward_arrows(g: dict[str, set[str]]) -> set[tuple[str, str]]:
    bad = set()
    for src, targets in g.items():
        for dst in targets:
            if not dst.startswith("dgbench.") or top(src) == top(dst):
                continue
            if layer(src) == layer(dst) == 0:
                continue
            if layer(dst) >= layer(src):
                bad.add((src, dst))
    return bad


def circles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in g:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_every_package_has_a_layer():
    assert {top(m) or "__init__" for m in graph()} <= set(LAYERS), "add the new package to LAYERS"


def test_arrows_point_down():
    found = upward_arrows(graph())
    assert found - set(ALLOWED_UPWARD) == set(), "upward imports (move the code down, or pass it in)"
    assert set(ALLOWED_UPWARD) <= found, "an allowed upward arrow is gone: remove it from ALLOWED_UPWARD"


def test_no_import_circles():
    assert circles(graph()) == []


def test_torch_free_modules_import_no_torch_or_transformers():
    g = graph()
    heavy = {(m, t) for m, targets in g.items() if m.startswith(TORCH_FREE) for t in targets
             if t.split(".")[0] in HEAVY}
    assert heavy == set()


def test_the_checks_catch_what_they_claim():
    # The checks themselves, on a made-up graph: an upward arrow, a circle, a heavy import.
    g = {"dgbench.models.x": {"dgbench.cli.y"}, "dgbench.cli.y": {"dgbench.models.x"},
         "dgbench.report.z": {"torch"}}
    assert ("dgbench.models.x", "dgbench.cli.y") in upward_arrows(g)
    assert circles(g) == [["dgbench.cli.y", "dgbench.models.x"]]
