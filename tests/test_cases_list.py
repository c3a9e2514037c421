"""`streetwatch cases list` shows the newest `--limit` (50) cases and says how many match: "50 of 46,210".

It used to cut at 50 silently, with a title counting only what it showed ("50 case(s)").
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from typer.testing import CliRunner

from streetwatch.cases import tables as t
from streetwatch.cases.export import CaseFilter, count_cases
from streetwatch.cases.status import CaseStatus
from streetwatch.cases.store import CaseStore
from streetwatch.cli import app
from streetwatch.commands.cases import list_title

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=timezone.utc)


def store_with(tmp_path, garbage: int, parking: int, merged: int = 0) -> CaseStore:
    store = CaseStore(f"sqlite:///{tmp_path / 'streetwatch.db'}")
    kinds = [("exposed_garbage", CaseStatus.NEW)] * garbage + [("illegal_parking", CaseStatus.NEW)] * parking
    kinds += [("exposed_garbage", CaseStatus.MERGED)] * merged  # empty shells: never listed nor counted
    with store.session() as ses:
        for k, (ptype, status) in enumerate(kinds):
            seen = T0 + timedelta(minutes=k)
            ses.add(t.Case(problem_type=ptype, status=status, camera_id="cam07", first_seen=seen, last_seen=seen,
                           sighting_count=1, best_confidence=0.8))
        ses.commit()
    return store


def list_output(tmp_path, *args: str) -> str:
    result = CliRunner().invoke(app, ["cases", "list", "--data-dir", str(tmp_path), *args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def test_the_title_says_how_many_match_when_the_limit_cuts(tmp_path):
    store_with(tmp_path, garbage=7, parking=2, merged=3)
    out = list_output(tmp_path, "--limit", "5")
    assert "5 of 9 case(s)" in out
    assert "showing the newest 5 of 9 matching cases (use --limit N, 0 for all)" in out
    assert out.count("exposed_garbage") + out.count("illegal_parking") == 5
    assert "illegal_parking" in out  # newest first: the two parking cases were filed last


def test_an_uncut_list_says_only_its_count(tmp_path):
    store_with(tmp_path, garbage=7, parking=2, merged=3)
    for args in (["--limit", "0"], ["--limit", "9"], []):
        out = list_output(tmp_path, *args)
        assert "9 case(s)" in out and " of " not in out and "showing" not in out
    out = list_output(tmp_path, "--type", "illegal_parking", "--limit", "1")
    assert "1 of 2 case(s)" in out  # the count obeys the filters


def test_count_cases_follows_the_list_filters(tmp_path):
    store = store_with(tmp_path, garbage=4, parking=3, merged=2)
    assert count_cases(store) == 7
    assert count_cases(store, CaseFilter(problem_type="exposed_garbage")) == 4
    assert count_cases(store, CaseFilter(status=CaseStatus.MERGED)) == 2
    assert count_cases(store, CaseFilter(since=T0 + timedelta(minutes=5))) == 2


def test_the_title_formats_large_counts():
    assert list_title(50, 46210) == "50 of 46,210 case(s)"
    assert list_title(3, 3) == "3 case(s)" and list_title(1200) == "1,200 case(s)"
