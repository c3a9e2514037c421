"""Which model streetwatch uses when none is named: the current promoted one, else the bundled one.

`streetwatch models promote` copies a model that is not worse than the current one into the data
folder, never into the source tree, and `streetwatch models rollback` returns to the one before:

    streetwatch-data/models/
        0001-wise08/0001-wise08.pt      the weights (a copy: the training run may be deleted)
        0001-wise08/metrics.json        its evaluation on the fixed set at promotion
        0001-wise08/MODEL_CARD.md       what it is, where it came from, how it compared
        history.jsonl                   one line per promote, refusal and rollback, never rewritten

The current model is replayed from the history (a promotion pushes, a rollback pops), so the log is
the only state and every past decision stays readable. This module only reads; `training.evaluate`
writes. The bundled model (`models/streetwatch-default`) is the fallback when nothing was promoted.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

__all__ = ["BUNDLED", "BUNDLED_MODEL", "HISTORY", "current_entry", "current_model", "default_data_dir",
           "models_dir", "promoted_stack", "read_history"]

log = logging.getLogger(__name__)
# Package data (pyproject: [tool.setuptools.package-data]): beside the packages in a wheel, the repository root
# in a checkout. Never a path into ../shared or the working directory.
PACKAGE_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_MODEL = PACKAGE_ROOT / "models" / "streetwatch-default" / "streetwatch-default.pt"
BUNDLED = "bundled"  # the id history entries use for the bundled model
HISTORY = "history.jsonl"


def default_data_dir() -> Path:
    """The data folder the CLI uses when `--data-dir` is not given: $STREETWATCH_DATA, else ./streetwatch-data."""
    return Path(os.environ.get("STREETWATCH_DATA") or "streetwatch-data")


def models_dir(data_dir: Path | None = None) -> Path:
    return Path(data_dir or default_data_dir()) / "models"


def read_history(data_dir: Path | None = None) -> list[dict]:
    """Every promote / refused / rollback entry, oldest first. A line cut short by a crash is skipped."""
    path = models_dir(data_dir) / HISTORY
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    out = []
    for number, line in enumerate(lines, 1):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            log.warning("%s:%d: not a JSON line; skipped", path, number)
            continue
        if isinstance(entry, dict):
            out.append(entry)
    return out


def promoted_stack(history: list[dict]) -> list[dict]:
    """The promotions still in force, oldest first: each promotion pushes, each rollback pops."""
    stack: list[dict] = []
    for entry in history:
        if entry.get("event") == "promote":
            stack.append(entry)
        elif entry.get("event") == "rollback" and stack:
            stack.pop()
    return stack


def current_entry(data_dir: Path | None = None) -> dict | None:
    """The history entry of the model in use, None when it is the bundled one."""
    stack = promoted_stack(read_history(data_dir))
    return stack[-1] if stack else None


def current_model(data_dir: Path | None = None) -> Path:
    """The weights to use when none are named: the current promoted model, else the bundled one.

    A promoted model whose weights were deleted is passed over (with a warning) for the one before it.

    Example:
        >>> current_model(Path("streetwatch-data"))
        PosixPath('streetwatch-data/models/0002-wise08/0002-wise08.pt')
    """
    folder = models_dir(data_dir)
    for entry in reversed(promoted_stack(read_history(data_dir))):
        weights = folder / entry["weights"]
        if weights.is_file():
            return weights
        log.warning("promoted model %s: %s is missing; using the model before it", entry.get("id"), weights)
    return BUNDLED_MODEL
