"""What every command shares: where data lives, the database option, and errors as one line."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from functools import wraps
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from streetwatch.detector.errors import StreetwatchError

console = Console()
err_console = Console(stderr=True)

DataDir = Annotated[
    Path,
    typer.Option("--data-dir", envvar="STREETWATCH_DATA", help="Folder for the SQLite database and evidence."),
]
DbUrl = Annotated[
    str | None,
    typer.Option("--db", envvar="STREETWATCH_DB",
                 help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db (default: SQLite in --data-dir)."),
]
DEFAULT_DATA_DIR = Path("streetwatch-data")

F = TypeVar("F", bound=Callable)


def parse_when(text: str | None, option: str) -> datetime | None:
    """An ISO 8601 option value as an aware datetime (UTC when no zone is given); None when empty."""
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"{option} {text!r}: use ISO 8601, e.g. 2026-11-01T08:30:00+08:00") from exc
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


M = TypeVar("M")


def parse_settings(model: type[M], options: dict) -> M:
    """A settings model from command-line options (None = not given): a bad value is one line naming
    the option, e.g. `--imgsz 10: Input should be greater than or equal to 64`."""
    from pydantic import ValidationError

    given = {k: v for k, v in options.items() if v is not None}
    try:
        return model.model_validate(given)  # type: ignore[attr-defined]
    except ValidationError as exc:
        first = exc.errors()[0]
        key = str(first["loc"][0]) if first["loc"] else "?"
        raise typer.BadParameter(f"--{key.replace('_', '-')} {given.get(key)!r}: {first['msg']}") from None


def db_url(data_dir: Path, db: str | None) -> str:
    if db:
        return db
    data_dir.mkdir(parents=True, exist_ok=True)
    from streetwatch.cases.store import sqlite_url

    return sqlite_url(data_dir)


def open_store(data_dir: Path, db: str | None):
    from streetwatch.cases.store import CaseStore

    return CaseStore(db_url(data_dir, db))


def fail(message: str, code: int = 2) -> None:
    from rich.markup import escape

    # escaped: a message naming `.[cluster]` or `[cam-1]` must print as written, not as rich markup
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def one_line_errors(func: F) -> F:
    """Turn streetwatch's own errors into `error: <file>: <problem>` and exit code 2; no traceback."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except StreetwatchError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            err_console.print("interrupted: work done so far is saved; run the same command again to resume")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def quiet_libraries() -> None:
    """Ultralytics/OpenVINO log chatter would bury the progress bar."""
    import logging

    os.environ.setdefault("YOLO_VERBOSE", "False")
    for name in ("ultralytics", "openvino"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if not sys.warnoptions:
        import warnings

        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=UserWarning)
