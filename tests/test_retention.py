"""Evidence retention (issue 28 item 3): which files go, which stay, and what the record says afterwards.

The planner is tested on rows in memory; the apply step on a real database (SQLite and the local PostgreSQL)
with real JPEGs, cases of every status at four ages; then the CLI, the daemon's section and its job.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from streetwatch.camera_daemon.config import check_daemon_config
from streetwatch.camera_daemon.retention_job import RetentionJob, RetentionSection
from streetwatch.cases import tables as t
from streetwatch.cases.expire import EVENT, expire_evidence
from streetwatch.cases.retention import CaseRow, RetentionSettings, SightingRow, plan_expiry
from streetwatch.cases.status import CaseStatus
from streetwatch.cases.store import CaseStore
from streetwatch.cli import app
from streetwatch.detector.errors import ConfigError
from streetwatch.review import actions
from tests.daemon_helpers import make_config, write_config
from tests.reviewkit import file_sighting

pytestmark = pytest.mark.timeout(120)
NOW = datetime(2027, 6, 1, 12, 0, tzinfo=timezone.utc)
AGES = {"fresh": 0, "d10": 10, "d40": 40, "d400": 400}
RAW = ("raw", "annotated", "crop")


# ---- the planner, pure ------------------------------------------------------------------------------------


def ev(stem: str, keys=RAW) -> dict:
    return {k: {"path": f"cam/{stem}_{k}.jpg", "sha256": f"{stem}-{k}"} for k in keys}


def days_ago(n: float) -> datetime:
    return NOW - timedelta(days=n)


def sighting_row(sid: int, age: float, evidence: dict, created_age: float | None = None) -> SightingRow:
    return SightingRow(sid, days_ago(age), days_ago(age if created_age is None else created_age), evidence)


def case_row(cid: int, status: str, age: float, evidence: dict, sightings=(), **kw) -> CaseRow:
    return CaseRow(cid, status, days_ago(age), days_ago(age), evidence, tuple(sightings), **kw)


def planned(cases, settings=None) -> dict[str, str]:
    plan = plan_expiry(cases, settings or RetentionSettings(), NOW)
    return {e.path: e.reason.value for e in plan.expiries}


def test_each_status_at_each_age_under_the_defaults():
    cases, expected = [], {}
    rules = {"new": ("unreviewed", 30), "rejected": ("rejected", 30), "confirmed": ("positive", 365),
             "dispatched": ("positive", 365), "resolved": ("positive", 365)}
    for i, (status, (reason, days)) in enumerate(rules.items()):
        for j, age in enumerate(AGES.values()):
            cid = 10 * i + j
            files = ev(f"c{cid}")
            cases.append(case_row(cid, status, age, files, [sighting_row(cid, age, files)]))
            if age > days:
                expected.update({f["path"]: reason for f in files.values()})
    assert planned(cases) == expected
    assert set(expected.values()) == {"unreviewed", "rejected", "positive"}


def test_a_sighting_is_aged_by_when_it_was_filed_too():
    """A batch run over 100-day-old footage filed yesterday: its frames wait for review like any other."""
    footage, best = ev("old-footage"), ev("best")
    case = CaseRow(1, "new", days_ago(1), days_ago(1), best,
                   (sighting_row(1, 100, footage, created_age=1), sighting_row(2, 1, best)))
    assert planned([case]) == {}
    filed_long_ago = replace(case, sightings=(sighting_row(1, 100, footage), sighting_row(2, 1, best)))
    assert planned([filed_long_ago]) == {f["path"]: "unreviewed" for f in footage.values()}


def test_a_case_seen_again_keeps_its_new_frames_and_its_best_frame():
    old, new = ev("old"), ev("new")
    # the best frame (the case's evidence) is the old sighting's: kept while the case is active
    best_old = case_row(1, "rejected", 1, old, [sighting_row(1, 40, old), sighting_row(2, 1, new)])
    plan = plan_expiry([best_old], RetentionSettings(), NOW)
    assert plan.expiries == () and len(plan.kept_shared) == 3
    # the best frame is the new one: the old sighting's frames go, the new ones stay
    best_new = replace(best_old, evidence=new)
    assert planned([best_new]) == {f["path"]: "rejected" for f in old.values()}


def test_a_file_goes_only_when_every_entry_naming_it_is_due():
    files = ev("shared")
    case = case_row(1, "new", 40, files, [sighting_row(1, 40, files)])
    plan = plan_expiry([case], RetentionSettings(), NOW)
    assert len(plan.expiries) == 3
    assert all({(r.case_id, r.sighting_id) for r in e.refs} == {(1, None), (1, 1)} for e in plan.expiries)
    assert all(r.sha256 == f"shared-{r.key}" for e in plan.expiries for r in e.refs)


def test_a_merged_shell_follows_the_case_that_absorbed_it():
    shell_files, own = ev("shell"), ev("target")
    target = case_row(2, "confirmed", 40, own, [sighting_row(5, 40, own), sighting_row(6, 40, shell_files)])
    shell = case_row(1, "merged", 40, shell_files, merged_into=2)
    assert planned([shell, target]) == {}  # positive: 365 days
    rejected = replace(target, status="rejected")
    plan = plan_expiry([shell, rejected], RetentionSettings(), NOW)
    assert {e.reason.value for e in plan.expiries} == {"rejected"} and len(plan.expiries) == 6
    assert len(plan.groups()) == 1  # the shell and its target share files: one transaction
    orphan = replace(shell, merged_into=99)  # a broken chain: nothing positive known, unreviewed
    assert set(planned([orphan]).values()) == {"unreviewed"}
    loop = [replace(shell, merged_into=2), case_row(2, "merged", 40, {}, merged_into=1)]
    assert set(planned(loop).values()) == {"unreviewed"}


def test_a_reopened_case_keeps_the_positive_period():
    files = ev("back")
    case = case_row(1, "new", 40, files, [sighting_row(1, 40, files)], recurrence_count=1)
    assert planned([case]) == {}
    assert len(planned([replace(case, recurrence_count=0)])) == 3


def test_redacted_copies_follow_their_own_days_whatever_the_status():
    files = {**ev("r"), **ev("r", ("redacted_raw", "redacted_annotated", "redacted_crop"))}
    confirmed = case_row(1, "confirmed", 40, files, [sighting_row(1, 40, files)])
    assert planned([confirmed]) == {}  # raw: 365 days; redacted: kept while the case exists
    ten = RetentionSettings(redacted_days=10)
    assert planned([confirmed], ten) == {f"cam/r_redacted_{k}.jpg": "redacted" for k in RAW}
    rejected = replace(confirmed, status="rejected")
    assert planned([rejected]) == {f"cam/r_{k}.jpg": "rejected" for k in RAW}
    assert len(planned([rejected], ten)) == 6
    keep_all = RetentionSettings(raw_days_confirmed=None)
    assert planned([replace(confirmed, last_seen=days_ago(4000), updated_at=days_ago(4000),
                            sightings=(sighting_row(1, 4000, files),))], keep_all) == {}


def test_expired_entries_unknown_keys_and_odd_entries_are_left_alone():
    gone = {"path": None, "sha256": "x", "expired_at": "2027-01-01T00:00:00+00:00"}
    evidence = {"raw": gone, "thumbnail": {"path": "cam/t.jpg", "sha256": "t"}, "crop": "not-a-dict",
                "annotated": {"path": "", "sha256": "e"}}
    case = case_row(1, "rejected", 400, evidence, [sighting_row(1, 400, evidence)])
    assert plan_expiry([case], RetentionSettings(), NOW).expiries == ()


def test_settings_are_checked():
    assert RetentionSettings() == RetentionSettings(raw_days_unconfirmed=30, raw_days_confirmed=365,
                                                    redacted_days=None)
    with pytest.raises(ValueError, match="swapped values"):
        RetentionSettings(raw_days_unconfirmed=60, raw_days_confirmed=30)
    for bad in ({"raw_days_unconfirmed": 0}, {"raw_days_unconfirmed": True}, {"redacted_days": -1},
                {"raw_days_unconfirmed": None}, {"keep_forever": 1}):
        with pytest.raises(ValueError):
            RetentionSettings.model_validate(bad)


# ---- applied to a real database and real files -------------------------------------------------------------


def age(store: CaseStore, case_id: int, days: float, now: datetime = NOW) -> None:
    """Make the case and its sightings `days` old: seen, filed and last updated then."""
    when = now - timedelta(days=days)
    with store.sessions.begin() as ses:
        case = ses.get(t.Case, case_id)
        case.first_seen = case.last_seen = case.updated_at = case.created_at = when
        for s in ses.scalars(select(t.Sighting).where(t.Sighting.case_id == case_id)):
            s.first_seen = s.last_seen = s.created_at = when


def set_status(store: CaseStore, case_id: int, status: str, **fields) -> None:
    with store.sessions.begin() as ses:
        case = ses.get(t.Case, case_id)
        case.status = status
        for key, value in fields.items():
            setattr(case, key, value)


def file_case(store: CaseStore, evidence_dir: Path, name: str, first_seen: float = NOW.timestamp()) -> int:
    """A case of its own (its own camera) with one sighting and real raw/annotated/crop JPEGs."""
    return file_sighting(store, evidence_dir, name, camera_id=name, xyxy=(40, 40, 120, 120),
                         first_seen=first_seen).case_id


def entries(store: CaseStore, case_id: int) -> dict[str | int, dict]:
    """The case's evidence ("case") and each of its sightings' (by id)."""
    with store.session() as ses:
        out: dict[str | int, dict] = {"case": dict(ses.get(t.Case, case_id).evidence or {})}
        for s in ses.scalars(select(t.Sighting).where(t.Sighting.case_id == case_id)):
            out[s.id] = dict(s.evidence or {})
        return out


def paths(store: CaseStore, case_id: int) -> set[str]:
    return {e["path"] for evidence in entries(store, case_id).values() for e in evidence.values() if e["path"]}


def files_on_disk(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*.jpg")}


def retention_events(store: CaseStore, case_id: int | None = None) -> list[t.CaseEvent]:
    with store.session() as ses:
        query = select(t.CaseEvent).where(t.CaseEvent.action == EVENT).order_by(t.CaseEvent.id)
        if case_id is not None:
            query = query.where(t.CaseEvent.case_id == case_id)
        return list(ses.scalars(query))


@pytest.fixture
def matrix(db_url, tmp_path):
    """A case of every status at every age, a reopened one, and merged shells (absorbed by confirmed cases)."""
    store, root = CaseStore(db_url), tmp_path / "evidence"
    cases: dict[tuple[str, str], int] = {}
    for label, days in AGES.items():
        for status in ("new", "confirmed", "dispatched", "rejected", "resolved"):
            cid = cases[(status, label)] = file_case(store, root, f"{status}-{label}")
            if status != "new":
                set_status(store, cid, status)
            age(store, cid, days)
        reopened = cases[("reopened", label)] = file_case(store, root, f"reopened-{label}")
        set_status(store, reopened, "new", recurrence_count=1)
        age(store, reopened, days)
        shell, target = file_case(store, root, f"shell-{label}"), file_case(store, root, f"target-{label}")
        with store.sessions.begin() as ses:
            actions.merge(ses, target, shell, "alice")
        set_status(store, target, "confirmed")
        cases[("merged", label)], cases[("merged-into", label)] = shell, target
        age(store, shell, days)
        age(store, target, days)
    return store, root, cases


def expected_gone(store: CaseStore, cases: dict) -> set[str]:
    """Under the defaults: raw frames of new and rejected cases past 30 days, of positive ones past 365."""
    gone = set()
    for (status, label), cid in cases.items():
        days = 30 if status in ("new", "rejected") else 365
        if AGES[label] > days:
            gone |= paths(store, cid)
    return gone


def test_retention_over_every_status_and_age(matrix):
    store, root, cases = matrix
    with store.session() as ses:  # every status is in the database
        assert set(ses.scalars(select(t.Case.status))) == set(CaseStatus)
    before = files_on_disk(root)
    assert len(before) == 4 * 8 * 3  # per age: 8 cases filed with one sighting (the shell's moved), 3 files each
    gone = expected_gone(store, cases)
    assert gone and gone < before
    before_entries = {cid: entries(store, cid) for cid in cases.values()}
    with store.session() as ses:
        counts = (len(ses.scalars(select(t.Case)).all()), len(ses.scalars(select(t.Sighting)).all()))

    dry = expire_evidence(store, root, RetentionSettings(), now=NOW, dry_run=True)
    assert files_on_disk(root) == before and retention_events(store) == []  # a dry run deletes nothing
    assert dry.files == {"unreviewed": 6, "rejected": 6, "positive": 18}

    report = expire_evidence(store, root, RetentionSettings(), now=NOW, actor="retention")
    assert files_on_disk(root) == before - gone  # exactly these went, every other file stayed
    assert report.files == dry.files and report.missing == 0 and report.kept_shared == 0
    expired_cases = {cid for (status, label), cid in cases.items()
                     if AGES[label] > (30 if status in ("new", "rejected") else 365)}
    assert report.cases == expired_cases == dry.cases
    with store.session() as ses:  # the cases and sightings stay
        assert (len(ses.scalars(select(t.Case)).all()), len(ses.scalars(select(t.Sighting)).all())) == counts

    for cid in cases.values():
        after = entries(store, cid)
        for holder, evidence in before_entries[cid].items():
            for key, entry in evidence.items():
                if cid in expired_cases:  # the hash stays, the path goes, the time it expired is said
                    assert after[holder][key] == {"path": None, "sha256": entry["sha256"],
                                                  "expired_at": NOW.isoformat()}
                else:
                    assert after[holder][key] == entry
    new_40 = cases[("new", "d40")]
    [event] = retention_events(store, new_40)
    sighting_id = next(k for k in entries(store, new_40) if k != "case")
    assert event.actor == "retention" and as_naive(event.at) == as_naive(NOW)
    assert event.detail == {"reasons": {"unreviewed": ["annotated", "crop", "raw"]}, "sightings": [sighting_id],
                            "deleted": 3, "missing": 0}
    [absorbed] = retention_events(store, cases[("merged-into", "d400")])
    assert absorbed.detail["reasons"] == {"positive": list(sorted(RAW))} and absorbed.detail["deleted"] == 6
    [shell_event] = retention_events(store, cases[("merged", "d400")])
    assert shell_event.detail["sightings"] == [] and shell_event.detail["deleted"] == 3
    assert len(retention_events(store)) == len(expired_cases)

    again = expire_evidence(store, root, RetentionSettings(), now=NOW)  # idempotent
    assert sum(again.files.values()) == again.entries == again.missing == 0 and not again.cases
    assert files_on_disk(root) == before - gone and len(retention_events(store)) == len(expired_cases)


def as_naive(dt: datetime) -> datetime:
    return dt.astimezone(timezone.utc).replace(tzinfo=None) if dt.tzinfo else dt


def test_missing_files_are_counted_and_marked_and_others_hosts_files_are_left(sqlite_url, tmp_path):
    store, root = CaseStore(sqlite_url), tmp_path / "evidence"
    missing, elsewhere = file_case(store, root, "gone-here"), file_case(store, root, "other-host")
    for cid in (missing, elsewhere):
        set_status(store, cid, "rejected")
        age(store, cid, 40)
    (root / next(p for p in paths(store, missing) if p.endswith("_crop.jpg"))).unlink()
    for p in paths(store, elsewhere):  # its whole folder is absent: the evidence of another host sharing the DB
        (root / p).unlink()
    (root / next(iter(paths(store, elsewhere)))).parent.rmdir()
    (root / next(iter(paths(store, elsewhere)))).parent.parent.rmdir()

    report = expire_evidence(store, root, RetentionSettings(), now=NOW)
    assert report.files == {"rejected": 2} and report.missing == 1 and report.elsewhere == 3
    assert all(e["path"] is None for ev_ in entries(store, missing).values() for e in ev_.values())
    assert all(e["path"] for ev_ in entries(store, elsewhere).values() for e in ev_.values())
    [event] = retention_events(store, missing)
    assert (event.detail["deleted"], event.detail["missing"]) == (2, 1)
    assert retention_events(store, elsewhere) == []
    assert "another host" in " ".join(report.lines())


def add_redacted_copies(store: CaseStore, root: Path, case_id: int) -> None:
    """A redacted copy beside each raw-tier file of the case and its sighting, named as the evidence writer does."""
    with store.sessions.begin() as ses:
        for row in [ses.get(t.Case, case_id), *ses.scalars(select(t.Sighting).where(t.Sighting.case_id == case_id))]:
            evidence = dict(row.evidence)
            for key in RAW:
                rel = evidence[key]["path"].replace(".jpg", ".redacted.jpg")
                (root / rel).write_bytes((root / evidence[key]["path"]).read_bytes())
                evidence[f"redacted_{key}"] = {"path": rel, "sha256": f"r-{key}", "redaction": {"faces": 1}}
            row.evidence = evidence


def test_redacted_copies_go_only_when_redacted_days_says_so(db_url, tmp_path):
    store, root = CaseStore(db_url), tmp_path / "evidence"
    confirmed, rejected = file_case(store, root, "kept-raw"), file_case(store, root, "gone-raw")
    set_status(store, confirmed, "confirmed")
    set_status(store, rejected, "rejected")
    for cid in (confirmed, rejected):
        add_redacted_copies(store, root, cid)
        age(store, cid, 40)
    raw_of = {cid: {p for p in paths(store, cid) if not p.endswith(".redacted.jpg")} for cid in (confirmed, rejected)}
    redacted_of = {cid: paths(store, cid) - raw_of[cid] for cid in (confirmed, rejected)}
    before = files_on_disk(root)
    assert len(before) == 12

    report = expire_evidence(store, root, RetentionSettings(), now=NOW)  # redacted copies kept by default
    assert report.files == {"rejected": 3} and files_on_disk(root) == before - raw_of[rejected]
    report = expire_evidence(store, root, RetentionSettings(redacted_days=10), now=NOW)
    assert report.files == {"redacted": 6}
    assert files_on_disk(root) == raw_of[confirmed]  # the confirmed case's raw frames: 365 days
    expired = entries(store, confirmed)["case"]["redacted_raw"]
    assert expired == {"path": None, "sha256": "r-raw", "redaction": {"faces": 1}, "expired_at": NOW.isoformat()}
    assert redacted_of[confirmed] and not redacted_of[confirmed] & files_on_disk(root)
    assert [e.detail["reasons"] for e in retention_events(store, rejected)] == [
        {"rejected": sorted(RAW)}, {"redacted": ["redacted_annotated", "redacted_crop", "redacted_raw"]}]


def test_a_case_that_changed_since_the_plan_is_left_for_the_next_run(sqlite_url, tmp_path, monkeypatch):
    """A sighting filed between the snapshot and the transaction: the case's version moved, nothing goes."""
    import streetwatch.cases.expire as expire

    store, root = CaseStore(sqlite_url), tmp_path / "evidence"
    cid = file_case(store, root, "busy")
    age(store, cid, 40)
    real = expire.plan_expiry

    def plan_then_review(rows, settings, now):
        plan = real(rows, settings, now)
        set_status(store, cid, "confirmed")  # an analyst confirms it meanwhile
        return plan

    monkeypatch.setattr(expire, "plan_expiry", plan_then_review)
    report = expire_evidence(store, root, RetentionSettings(), now=NOW)
    assert report.changed == 3 and not report.files and len(files_on_disk(root)) == 3
    assert retention_events(store) == []


def test_a_file_rewritten_after_the_run_began_is_not_deleted(sqlite_url, tmp_path):
    store, root = CaseStore(sqlite_url), tmp_path / "evidence"
    cid = file_case(store, root, "rewritten")
    age(store, cid, 40)
    raw = root / next(p for p in paths(store, cid) if p.endswith("_raw.jpg"))
    future = time.time() + 3600
    os.utime(raw, (future, future))
    report = expire_evidence(store, root, RetentionSettings(), now=NOW)
    assert raw.exists() and report.changed == 1 and report.files == {"unreviewed": 2}
    assert entries(store, cid)["case"]["raw"]["path"] is not None


# ---- the CLI, the daemon's section and its job ------------------------------------------------------------------


def test_cli_dry_run_then_expire(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    store, root = CaseStore(f"sqlite:///{data / 'streetwatch.db'}"), data / "evidence"
    real_now = datetime.now(timezone.utc)
    old, young = file_case(store, root, "old-one"), file_case(store, root, "young-one")
    age(store, old, 40, real_now)
    age(store, young, 10, real_now)
    runner = CliRunner()
    dry = runner.invoke(app, ["cases", "expire-evidence", "--dry-run", "--data-dir", str(data)])
    assert dry.exit_code == 0, dry.output
    assert "would delete 3 evidence file(s) of 1 case(s): unreviewed 3" in dry.output
    assert "dry run: nothing was deleted" in dry.output and len(files_on_disk(root)) == 6
    bad = runner.invoke(app, ["cases", "expire-evidence", "--confirmed-days", "soon", "--data-dir", str(data)])
    assert bad.exit_code == 2 and "whole number of days, or keep" in bad.output
    swapped = runner.invoke(app, ["cases", "expire-evidence", "--raw-days", "60", "--confirmed-days", "30",
                                  "--data-dir", str(data)])
    assert swapped.exit_code == 2 and "swapped" in swapped.output
    done = runner.invoke(app, ["cases", "expire-evidence", "--raw-days", "7", "--confirmed-days", "keep",
                               "--data-dir", str(data)])
    assert done.exit_code == 0, done.output
    assert "deleted 6 evidence file(s) of 2 case(s): unreviewed 6" in done.output
    assert files_on_disk(root) == set()


def test_the_daemon_section_is_validated_by_config_check(tmp_path):
    cfg = make_config(tmp_path, [], retention={"raw_days_unconfirmed": 7, "every_hours": 6})
    assert cfg.retention.settings() == RetentionSettings(raw_days_unconfirmed=7)
    assert cfg.retention.enabled and cfg.retention.every_hours == 6
    assert make_config(tmp_path, []).retention == RetentionSection()
    path = write_config(tmp_path / "cameras.yaml", {"retention": {"raw_days_confirmed": 5, "every_hour": 1}})
    with pytest.raises(ConfigError) as err:
        check_daemon_config(path)
    assert "retention.every_hour" in str(err.value)
    path = write_config(tmp_path / "cameras.yaml", {"retention": {"raw_days_confirmed": 5}})
    with pytest.raises(ConfigError, match="retention: .*swapped"):
        check_daemon_config(path)


def test_the_daemon_job_expires_at_start_and_reads_its_section_afresh(sqlite_url, tmp_path):
    store, root = CaseStore(sqlite_url), tmp_path / "evidence"
    cid = file_case(store, root, "daemon-old")
    age(store, cid, 40, datetime.now(timezone.utc))
    section = {"now": RetentionSection(enabled=False)}
    job = RetentionJob(lambda: section["now"], sqlite_url, root, threading.Event(), "daemon:test")
    assert job.run_once() is None and len(files_on_disk(root)) == 3  # disabled: nothing runs
    section["now"] = RetentionSection()
    report = job.run_once()
    assert report is not None and report.files == {"unreviewed": 3} and files_on_disk(root) == set()
    assert retention_events(store, cid)[0].actor == "daemon:test"


def test_the_daemon_runs_retention_when_it_starts(tmp_path):
    from streetwatch.camera_daemon.service import Daemon

    cfg = make_config(tmp_path, [], http={"enabled": False})
    url = f"sqlite:///{tmp_path / 'cases.db'}"
    store = CaseStore(url)
    cid = file_case(store, cfg.evidence_path, "before-start")
    age(store, cid, 40, datetime.now(timezone.utc))
    daemon = Daemon(cfg, db_url=url).start()
    try:
        deadline = time.monotonic() + 30
        while files_on_disk(cfg.evidence_path) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        daemon.stop()
    assert files_on_disk(cfg.evidence_path) == set()
    [event] = retention_events(store, cid)
    assert event.actor == daemon.actor
