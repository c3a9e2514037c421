"""Nothing in the case store, the review app or the reviews exporter is defined and then never used.

A name counts as used when it appears anywhere in the project (code, tests, benchmarks, templates,
scripts, docs) other than at its own definition. Route handlers and validators are used by their decorator.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.paths import PROJECT_ROOT

SCANNED = [*sorted((PROJECT_ROOT / "cases").rglob("*.py")), *sorted((PROJECT_ROOT / "review").rglob("*.py")),
           PROJECT_ROOT / "training" / "from_reviews.py"]
SKIP_DIRS = {".venv", ".git", "streetwatch.egg-info", "work-data", "__pycache__", "node_modules"}
TEXT_SUFFIXES = {".py", ".html", ".js", ".md", ".toml", ".sh", ".yaml", ".yml", ".cfg", ".mako"}
# names called by a framework, never by us
FRAMEWORK = {"upgrade", "downgrade", "run_migrations_online", "revision", "down_revision", "branch_labels",
             "depends_on", "model_config"}


def _corpus() -> list[str]:
    out = []
    for path in PROJECT_ROOT.rglob("*"):
        if path.suffix in TEXT_SUFFIXES and path.is_file() and not SKIP_DIRS & set(path.relative_to(PROJECT_ROOT).parts):
            out.append(path.read_text(errors="replace"))
    return out


def _registered(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Handed to a framework by a decorator call (`@router.get("/")`, `@field_validator("x")`), so used by it."""
    return any(isinstance(d, ast.Call) for d in node.decorator_list)


def definitions(path: Path) -> list[str]:
    """Top-level functions, classes and constants, and the methods of top-level classes."""
    names = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not _registered(node):
            names.append(node.name)
        elif isinstance(node, ast.ClassDef):
            names.append(node.name)
            names += [item.name for item in node.body
                      if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and not _registered(item)]
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [t.id for t in targets if isinstance(t, ast.Name)]
    return [n for n in names if not n.startswith("__") and n not in FRAMEWORK]


def test_every_definition_is_used_somewhere():
    corpus = _corpus()
    unused = []
    for path in SCANNED:
        for name in definitions(path):
            word = re.compile(rf"\b{re.escape(name)}\b")
            if sum(len(word.findall(text)) for text in corpus) < 2:  # the definition itself is one
                unused.append(f"{path.relative_to(PROJECT_ROOT)}: {name}")
    assert unused == []
