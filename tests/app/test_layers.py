"""The import graph of ``app`` and ``twin`` (top-level and function-level imports, via ast):
no cycles, ``twin`` never imports ``app``, ``app`` modules stay short and import only down
the layer order below."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 400

#: app's layers, lowest first: a module imports only from its own layer or lower ones
LAYERS: list[tuple[str, ...]] = [
    ("app.config", "app.errors", "app.codes", "app.observability", "app.threads"),
    ("app.db", "app.models"),
    ("app.schemas",),
    ("app.forecasting", "app.cache", "app.signals", "app.auth", "app.health"),
    ("app.services", "app.alerts.rules", "app.alerts.conditions", "app.alerts.service",
     "app.alerts.webhooks", "app.alerts.overrides", "app.events"),
    ("app.plots",),
    ("app.prewarm", "app.api", "app.web", "app.alerts", "app.commands"),  # adapters
    ("app", "app.gunicorn_conf", "app.migrations"),  # composition root, process settings
]
#: pairs of the same layer that must not import each other (either way)
SIBLINGS_APART = [("app.api", "app.web"), ("app.api", "app.prewarm"),
                  ("app.web", "app.prewarm")]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(package: str) -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((ROOT / package).rglob("*.py"))
            if ".venv" not in p.parts}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every module of ``known`` that ``name`` imports, anywhere in its body."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()

    def resolve(target: str) -> None:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            out.add(target)

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                resolve(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                resolve(full if full in known else base)
    return out


def _graph(*packages: str) -> dict[str, set[str]]:
    mods: dict[str, Path] = {}
    for package in packages:
        mods.update(_modules(package))
    return {name: _imports(name, path, set(mods)) for name, path in mods.items()}


def _cycles(graph: dict[str, set[str]], package: str) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), within ``package``."""
    nodes = [n for n in graph if n == package or n.startswith(package + ".")]
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in graph or not (w == package or w.startswith(package + ".")):
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                found.append(sorted(scc))

    for n in nodes:
        if n not in index:
            visit(n)
    return found


def _layer(module: str) -> int:
    best, level = -1, -1
    for i, group in enumerate(LAYERS):
        for prefix in group:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, level = len(prefix), i
    assert level >= 0, f"{module} is in no layer: add it to LAYERS"
    return level


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


GRAPH = _graph("app", "twin")


def test_app_has_no_import_cycle():
    assert _cycles(GRAPH, "app") == []


def test_twin_has_no_import_cycle():
    assert _cycles(GRAPH, "twin") == []


def test_twin_never_imports_app():
    bad = {m: sorted(d for d in deps if _within(d, "app"))
           for m, deps in GRAPH.items() if _within(m, "twin")}
    assert {m: d for m, d in bad.items() if d} == {}


def test_app_imports_follow_the_layer_order():
    against = []
    for module, deps in GRAPH.items():
        if not _within(module, "app"):
            continue
        for dep in deps:
            if _within(dep, "app") and _layer(dep) > _layer(module):
                against.append(f"{module} -> {dep}")
            for a, b in SIBLINGS_APART:
                if (_within(module, a) and _within(dep, b)) or (
                        _within(module, b) and _within(dep, a)):
                    against.append(f"{module} -> {dep}")
    assert against == []


def test_app_modules_are_short():
    long = {name: n for name, path in _modules("app").items()
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_walk_sees_function_level_and_relative_imports(tmp_path):
    """The walk covers imports inside functions too (the ones that dodge cycles)."""
    src = tmp_path / "mod.py"
    src.write_text("from . import cache\n\ndef f():\n    from app.api import routes\n")
    known = {"app.cache", "app.api", "app.api.routes", "app.services.mod"}
    assert _imports("app.services.mod", src, known) == {"app.api.routes"}
    assert _cycles({"p.a": {"p.b"}, "p.b": {"p.a"}}, "p") == [["p.a", "p.b"]]
    assert _layer("app.services.forecasts") < _layer("app.plots") < _layer("app.api.routes")
