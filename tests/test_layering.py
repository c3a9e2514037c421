"""How the case store, the review app and training depend on each other, read from the source (no imports run).

Every import counts, also one inside a function: a deferred import hides a cycle from Python, not from us.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.paths import PROJECT_ROOT

PACKAGES = ("cases", "review", "training", "camera_daemon", "commands", "detector", "batch", "streams")
OWN = ("cases", "review", "training.from_reviews")  # the layers these rules are about


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (PROJECT_ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _known(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports(module: str) -> dict[str, set[str]]:
    """{first-party module imported: names taken from it} for every import statement in `module`."""
    path = MODULES[module]
    out: dict[str, set[str]] = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if target := _known(alias.name.removeprefix("streetwatch.")):
                    out.setdefault(target, set())
        elif isinstance(node, ast.ImportFrom):
            base = (node.module or "").removeprefix("streetwatch.")
            if node.level:
                package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                if f"{base}.{alias.name}" in MODULES:  # `from cases import tables`: the submodule itself
                    out.setdefault(f"{base}.{alias.name}", set())
                elif target := _known(base):
                    out.setdefault(target, set()).add(alias.name)
    out.pop(module, None)
    return out


def _own(module: str) -> bool:
    return any(module == o or module.startswith(o + ".") for o in OWN)


def cycles() -> list[list[str]]:
    """Strongly connected components (Tarjan) of more than one module that touch our layers."""
    graph = {m: set(imports(m)) for m in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 and any(map(_own, component)):
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_reader_sees_imports_inside_functions_too():
    assert "cases.dedup" in imports("cases")
    assert {"review.routes", "review.web"} <= set(imports("review.app"))
    assert "cases.store" in imports("commands.review")  # imported inside the command functions


def test_no_import_cycles():
    assert cycles() == []


def test_layers_point_one_way():
    """The case store knows nothing above it; training reads cases, not the web app that writes them."""
    for module in MODULES:
        targets = set(imports(module))
        if module == "cases" or module.startswith("cases."):
            above = {t for t in targets if t.split(".")[0] in ("review", "training", "commands", "camera_daemon",
                                                                 "batch")}
            assert not above, f"{module} imports {sorted(above)}"
        if module.startswith("training"):
            assert not {t for t in targets if t.split(".")[0] == "review"}, module
    assert "review.app" not in imports("review.routes") and "review.routes" not in imports("review.web")


def test_no_private_names_cross_modules():
    for module in filter(_own, MODULES):
        for target, names in imports(module).items():
            private = sorted(n for n in names if n.startswith("_"))
            assert not private, f"{module} takes private {private} from {target}"
