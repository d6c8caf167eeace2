"""The package has no import cycle: the graph of ``audit.*`` imports (module level and
inside functions alike, read with ``ast``) is acyclic."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "audit"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is one of our modules."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """Module -> the ``audit`` modules it imports (an imported name that is a submodule
    counts as that submodule; any other name as the module it comes from)."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[:len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    targets.append(sub if sub in modules else base)
            for t in targets:
                if t.split(".")[0] != "audit":
                    continue
                r = _resolve(t, modules)
                if r is not None and r != mod:
                    graph[mod].add(r)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    comps: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return comps


def test_graph_sees_the_package():
    graph = import_graph()
    assert "audit.sources" in graph and "audit.data.store" in graph["audit.sources"]


def test_no_import_cycle():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles among: " + "; ".join(" <-> ".join(c) for c in cycles)


#: what the service may import from the library: its public entry points only
#: (ARCHITECTURE.md: "the service is a client of the library like any script")
SERVICE_MAY_IMPORT = {"audit", "audit.config", "audit.errors", "audit.compare", "audit.pipeline",
                      "audit.preflight", "audit.checks", "audit.report", "audit.findings",
                      "audit.io"}


def test_service_uses_only_the_public_library_api():
    graph = import_graph()
    bad = {mod: sorted(t for t in targets if not t.startswith("audit.service")
                       and t not in SERVICE_MAY_IMPORT)
           for mod, targets in graph.items() if mod.startswith("audit.service")}
    bad = {m: t for m, t in bad.items() if t}
    assert not bad, f"the service reaches into the library: {bad}"
    assert any(m.startswith("audit.service") for m in graph)


def test_the_core_never_imports_the_service():
    graph = import_graph()
    core = {m for m in graph if not m.startswith("audit.service")
            and m not in ("audit.cli", "audit.cli_service")}
    bad = sorted(m for m in core if any(t.startswith("audit.service") for t in graph[m]))
    assert not bad, f"core modules import the service (it needs the 'serve' extra): {bad}"
    assert "audit.service.server" in graph["audit.cli_service"]
