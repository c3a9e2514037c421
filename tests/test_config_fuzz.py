"""Every malformed config in the fuzz corpus gets ONE error line naming the file, exit code 2, no traceback.

The corpus (tests/fuzz/config/, made by tests/fuzz/make_config_corpus.py) holds what a fault and security
trial fed streetwatch: non-UTF-8 and random bytes, hostile nesting, duplicate keys and ids, NaN/inf and
absurd numbers, unsafe ids and paths. Before this, 5 of 57 gave a traceback and 16 were accepted.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from streetwatch.cli import app

CORPUS = Path(__file__).resolve().parent / "fuzz" / "config"
runner = CliRunner()


def cases(kind: str) -> list[Path]:
    return sorted((CORPUS / kind).glob("*.yaml"))


def command(kind: str, path: Path, tmp_path: Path) -> list[str]:
    if kind == "cameras":
        return ["config", "check", str(path)]
    option = "--taxonomy" if kind == "taxonomy" else "--zones"
    return ["detect", str(tmp_path / "never-read.mp4"), option, str(path), "--data-dir", str(tmp_path / "d")]


def assert_one_line_error(result, path: Path) -> None:
    out = result.output
    assert "Traceback" not in out and result.exception is None or isinstance(result.exception, SystemExit), out
    assert result.exit_code == 2, f"{path.name}: exit {result.exit_code}: {out}"
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, f"{path.name}: expected one line, got:\n{out}"
    assert lines[0].startswith("error: ") and path.name in lines[0], lines[0]


@pytest.mark.parametrize("kind", ["cameras", "taxonomy", "zones"])
def test_every_malformed_file_is_one_line_and_exit_2(kind: str, tmp_path: Path) -> None:
    files = cases(kind)
    assert len(files) >= 15
    for path in files:
        result = runner.invoke(app, command(kind, path, tmp_path), env={"COLUMNS": "400"})
        assert_one_line_error(result, path)
    assert not (tmp_path / "d" / "streetwatch.db").exists()  # rejected before anything was touched


def test_a_file_too_big_to_be_a_config(tmp_path: Path) -> None:
    big = tmp_path / "cameras.yaml"
    big.write_text("cameras:\n  - id: cam-1\n    url: rtsp://h/s\n    name: " + "x" * (5 << 20) + "\n")
    result = runner.invoke(app, ["config", "check", str(big)], env={"COLUMNS": "400"})
    assert_one_line_error(result, big)
    assert "too big" in result.output


def test_the_corpus_is_what_the_generator_makes(tmp_path: Path, monkeypatch) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("corpus", CORPUS.parent / "make_config_corpus.py")
    corpus = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(corpus)
    monkeypatch.setattr(corpus, "OUT", tmp_path / "config")
    corpus.main()
    for kind in ("cameras", "taxonomy", "zones"):
        made = {p.name: p.read_bytes() for p in (tmp_path / "config" / kind).glob("*.yaml")}
        kept = {p.name: p.read_bytes() for p in cases(kind)}
        assert made == kept, f"tests/fuzz/config/{kind} is stale: run tests/fuzz/make_config_corpus.py"
