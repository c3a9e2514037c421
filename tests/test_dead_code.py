"""Nothing in the case store, the review app or the reviews exporter is defined and then never used.

A name counts as used when it appears anywhere in the project (code, tests, benchmarks, templates,
scripts, docs) other than at its own definition. Route handlers and validators are used by their decorator.
"""

from __future__ import annotations

import ast
import os
import re
from collections import Counter
from pathlib import Path

from tests.paths import PROJECT_ROOT

SCANNED = [*sorted((PROJECT_ROOT / "cases").rglob("*.py")), *sorted((PROJECT_ROOT / "review").rglob("*.py")),
           PROJECT_ROOT / "training" / "from_reviews.py"]
SKIP_DIRS = {".venv", ".git", "streetwatch.egg-info", "work-data", "__pycache__", "node_modules"}
TEXT_SUFFIXES = {".py", ".html", ".js", ".md", ".toml", ".sh", ".yaml", ".yml", ".cfg", ".mako"}
# names called by a framework, never by us
FRAMEWORK = {"upgrade", "downgrade", "run_migrations_online", "revision", "down_revision", "branch_labels",
             "depends_on", "model_config"}


def _corpus() -> str:
    """Every project text file, joined by newlines (a word never spans two files). The skipped folders are pruned
    while walking, not filtered afterwards: .venv and work-data hold tens of thousands of files."""
    out = []
    for folder, dirs, files in os.walk(PROJECT_ROOT):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(files):
            path = Path(folder) / name
            if path.suffix in TEXT_SUFFIXES and name not in SKIP_DIRS and path.is_file():
                out.append(path.read_text(errors="replace"))
    return "\n".join(out)


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


def word_counts(text: str) -> Counter[str]:
    """How often each word occurs: a name found by `\\bname\\b` is exactly a whole run of word characters, so one
    pass over the corpus counts every name (a regex per name over the corpus took a minute on a loaded host)."""
    return Counter(re.findall(r"\w+", text))


def test_every_definition_is_used_somewhere():
    counts = word_counts(_corpus())
    unused = []
    for path in SCANNED:
        for name in definitions(path):
            if counts[name] < 2:  # the definition itself is one
                unused.append(f"{path.relative_to(PROJECT_ROOT)}: {name}")
    assert unused == []


def test_counting_words_finds_what_a_whole_word_search_finds():
    text = "run run_x xrun run2 run. (run) ünrun run\nrun"
    assert word_counts(text)["run"] == len(re.findall(r"\brun\b", text)) == 5
