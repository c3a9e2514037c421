"""`streetwatch telemetry` on the damaged-telemetry corpus (tests/fuzz/telemetry, written by
tests/fuzz/make_telemetry_corpus.py).

Every file must end one of two ways, never with a traceback: exit 0 with each problem on its own
`file:line: message` line (and the damaged line among them), or exit 1 with exactly one `error: file: ...` line
and nothing on stdout.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tests.fuzz.make_telemetry_corpus import write_corpus

CORPUS = Path(__file__).resolve().parent / "fuzz" / "telemetry"
MANIFEST: dict[str, dict] = json.loads((CORPUS / "MANIFEST.json").read_text())


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    from streetwatch.cli import app as streetwatch  # the real command line, every command registered

    return streetwatch


def test_corpus_is_what_the_script_writes(tmp_path: Path) -> None:
    # Deterministic, and the checked-in files are current: regenerating changes nothing.
    manifest = write_corpus(tmp_path / "corpus")
    assert manifest == MANIFEST
    written = sorted(p.name for p in (tmp_path / "corpus").iterdir())
    assert written == sorted(p.name for p in CORPUS.iterdir())
    for name in written:
        assert (tmp_path / "corpus" / name).read_bytes() == (CORPUS / name).read_bytes(), name
    assert 40 <= len(MANIFEST) <= 60
    assert {Path(n).suffix for n in MANIFEST} == {".SRT", ".csv"}
    assert sum(p.stat().st_size for p in CORPUS.iterdir()) < 400_000  # small


@pytest.mark.parametrize("name", sorted(MANIFEST))
@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_cli_on_damaged_file(app: typer.Typer, name: str, fmt: str) -> None:
    path = CORPUS / name
    expect, lines = MANIFEST[name]["expect"], MANIFEST[name]["problem_lines"]
    result = CliRunner().invoke(app, ["telemetry", str(path), "--format", fmt])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    if result.exit_code == 0:
        assert expect in ("ok", "any"), f"{name} should have failed"
        reported = []
        for line in result.stderr.splitlines():
            m = re.fullmatch(re.escape(str(path)) + r":(\d+): (entry|entries|GPS|no time codes)\b.*\S", line)
            assert m, f"problem without a line number: {line!r}"
            reported.append(int(m.group(1)))
        assert set(lines) <= set(reported), (lines, result.stderr)
        assert result.stdout.strip()
        if fmt == "json":
            entries = json.loads(result.stdout)["entries"]
            assert entries and all(e["lat"] is None or -90 <= e["lat"] <= 90 for e in entries)
        elif fmt == "csv":
            rows = list(csv.DictReader(io.StringIO(result.stdout)))
            assert rows and all(r["lon"] == "" or -180 <= float(r["lon"]) <= 180 for r in rows)
    else:
        assert expect in ("error", "any"), f"{name} should have been read: {result.stderr}"
        assert result.exit_code == 1
        assert result.stdout == ""
        assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"error: {path}: "), result.stderr


def test_the_installed_command_on_the_corpus() -> None:
    # The console script itself, in a fresh process: one readable file, one file with nothing usable.
    exe = Path(sys.executable).with_name("streetwatch")
    if not exe.exists():
        pytest.skip(f"no console script at {exe}")
    env = {**os.environ, "COLUMNS": "240"}
    ok = subprocess.run(
        [str(exe), "telemetry", str(CORPUS / "bracket_decimal_comma_lat.SRT"), "-f", "csv"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert ok.returncode == 0 and "Traceback" not in ok.stderr
    assert ok.stderr == (
        f"{CORPUS / 'bracket_decimal_comma_lat.SRT'}:17: entry 3: unreadable latitude '22,384342'; entry dropped\n"
    )
    assert [r["index"] for r in csv.DictReader(io.StringIO(ok.stdout))] == ["1", "2", "4", "5", "6"]
    bad = subprocess.run(
        [str(exe), "telemetry", str(CORPUS / "bracket_timecodes_only.SRT")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr == (
        f"error: {CORPUS / 'bracket_timecodes_only.SRT'}: no usable GPS or camera values: "
        "6 entries hold only time codes\n"
    )
