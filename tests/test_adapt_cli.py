"""`streetwatch models adapt` on the command line, without training: it says which model it adapts (path and
SHA-256 prefix) before anything else, and `--reviews` reads the review database `--db` names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streetwatch.cli import app
from streetwatch.detector.model import file_sha256
from tests.paths import PROJECT_ROOT

BUNDLED = PROJECT_ROOT / "models" / "streetwatch-default" / "streetwatch-default.pt"
REPORT = {"before": {"city": {"garbage": 0.2}}, "after": {"city": {"garbage": 0.5}}, "passes": True, "reasons": [],
          "minutes_spent": 0.1, "candidate": "cand.pt"}


@pytest.fixture
def no_training(monkeypatch):
    """`models adapt` up to the training, which is replaced: what it was asked to train, and which database the
    export of the reviews read."""
    seen: dict = {}

    def fake_adapt(settings, on_epoch=None, on_stage=None, on_set=None):
        seen["settings"] = settings
        return REPORT

    def fake_export(store, evidence_dir, out, **kw):
        seen["db"] = store.url
        Path(out).mkdir(parents=True, exist_ok=True)
        return {}

    monkeypatch.setattr("streetwatch.training.adapt_run.adapt", fake_adapt)
    monkeypatch.setattr("streetwatch.training.from_reviews.export_reviews", fake_export)
    return seen


def test_adapt_names_the_model_it_adapts_first_and_reviews_read_the_db_given(no_training, tmp_path):
    db = f"sqlite:///{tmp_path / 'bureau.db'}"
    result = CliRunner().invoke(app, ["models", "adapt", "--reviews", "--db", db, "--model", str(BUNDLED), "--nice",
                                      "0", "--out", str(tmp_path / "adapt"), "--data-dir", str(tmp_path / "data")],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    first = result.output.strip().splitlines()[0]
    assert first == f"adapting {BUNDLED.resolve()} (sha256 {file_sha256(BUNDLED)[:12]})"
    assert no_training["db"] == db  # not the default SQLite file in --data-dir
    assert no_training["settings"].model == BUNDLED and no_training["settings"].city == tmp_path / "adapt" / "reviews"
    assert "candidate: cand.pt" in result.output


def test_without_db_reviews_read_the_data_dirs_database(no_training, tmp_path, monkeypatch):
    monkeypatch.delenv("STREETWATCH_DB", raising=False)
    result = CliRunner().invoke(app, ["models", "adapt", "--reviews", "--model", str(BUNDLED), "--nice", "0",
                                      "--out", str(tmp_path / "adapt"), "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    assert no_training["db"].startswith("sqlite:///") and str(tmp_path / "data") in no_training["db"]


def test_db_without_reviews_and_a_missing_model_are_refused(no_training, tmp_path):
    labelled = ["models", "adapt", "--labelled", str(tmp_path), "--nice", "0", "--out", str(tmp_path / "adapt")]
    result = CliRunner().invoke(app, [*labelled, "--db", "sqlite:///x.db", "--model", str(BUNDLED)])
    assert result.exit_code != 0 and "--db" in result.output and "settings" not in no_training
    result = CliRunner().invoke(app, [*labelled, "--model", str(tmp_path / "gone.pt")])
    unboxed = re.sub(r"[\s│╭╮╰╯─]", "", result.output)  # the error box wraps a long temporary path anywhere
    assert result.exit_code != 0 and "gone.pt" in unboxed and "settings" not in no_training
