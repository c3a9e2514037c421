"""Shared fixtures: where ../shared lives, databases (SQLite and the real local PostgreSQL)."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from streetwatch.detector.offline import prepare_offline
from tests.paths import PROJECT_ROOT

prepare_offline()
SHARED = Path(os.environ.get("STREETWATCH_SHARED", PROJECT_ROOT.parent / "shared"))
PG_ADMIN_URL = os.environ.get("STREETWATCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing: CI must run with ../shared beside the project")
        pytest.skip(f"{path} not available")
    return path


def e2e_model(default: Path) -> Path:
    """The model an end-to-end test runs: its own `default`, or STREETWATCH_E2E_MODEL, so that a candidate is
    put through the same end-to-end tests before it is promoted (model v3, issue 22 item 6)."""
    given = os.environ.get("STREETWATCH_E2E_MODEL")
    if given and not Path(given).is_file():
        pytest.fail(f"STREETWATCH_E2E_MODEL={given}: no such weights file")
    return Path(given) if given else Path(default)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cases.db'}"


@pytest.fixture
def pg_url():
    """A fresh database on the local PostgreSQL, dropped afterwards."""
    from sqlalchemy import create_engine, text

    name = f"sw_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is not reachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cases.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def captions(monkeypatch) -> list[str]:
    """Every caption burnt into an annotated image (a spy: the images are drawn as always)."""
    seen: list[str] = []
    import streetwatch.cases.evidence as evidence

    real = evidence.caption

    def spy(s):
        seen.append(real(s))
        return seen[-1]

    monkeypatch.setattr(evidence, "caption", spy)
    return seen


@dataclass(frozen=True)
class SampleRun:
    """What one `streetwatch detect --sample` left: the folder it ran in (its data under streetwatch-data/), its exit
    code and output, and every caption it burnt into an annotated image."""

    folder: Path
    exit_code: int
    output: str
    captions: list[str]


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory) -> SampleRun:
    """`detect --sample` (the bundled sample clip through the real bundled model) run once for the session, in a
    folder of its own: the tests that read what it filed share the run, each asserting its own part, and none of them
    writes a case into it."""
    from typer.testing import CliRunner

    import streetwatch.cases.evidence as evidence
    from streetwatch.cli import app

    folder = tmp_path_factory.mktemp("sample-run")
    seen: list[str] = []
    real = evidence.caption

    def spy(s):
        seen.append(real(s))
        return seen[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evidence, "caption", spy)
        patch.chdir(folder)
        result = CliRunner().invoke(app, ["detect", "--sample"])
    return SampleRun(folder, result.exit_code, result.output, list(seen))


# Where the suite's time goes: STREETWATCH_TEST_TIMES=FILE writes each test's wall and CPU seconds (this process and
# the children it reaped; setup, call and teardown together) as JSON lines. A test whose CPU is far below its wall
# waits (real-time streams, sleeps); one near 2x wall uses both cores: the split between parallel and serial runs
# is read from this.
_TIMES = os.environ.get("STREETWATCH_TEST_TIMES")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    if not _TIMES:
        yield
        return
    import json
    import resource
    import time

    def cpu() -> float:
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    wall0, cpu0 = time.monotonic(), cpu()
    yield
    with open(_TIMES, "a") as out:
        out.write(json.dumps({"test": item.nodeid, "wall_s": round(time.monotonic() - wall0, 2),
                              "cpu_s": round(cpu() - cpu0, 2)}) + "\n")
