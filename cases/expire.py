"""Apply evidence retention (`cases.retention`): delete the files a plan names, and say so in the record.

    snapshot (one read, no lock) → plan_expiry (pure) → per group of cases (in transactions of BATCH groups):
        take the problem types' locks → re-read the rows → unchanged since the snapshot? → delete the files
        → replace each entry by {"path": None, "sha256": <kept>, "expired_at": <ISO UTC>} (other fields kept)
        in case AND sighting evidence → one `evidence_expired` event per case

A group whose case or sighting changed since the snapshot (a new sighting, a review action, a merge) is left
for the next run, and so is a file written after the run began (a daemon track rewriting its evidence):
retention never deletes what it did not plan on current facts. A file already gone counts as `missing` and
its entries are marked all the same, but only when its folder is under the evidence root: several daemons
and batch hosts may share one PostgreSQL, each with its own evidence folder, and one host's run must not
mark another's files expired (nor must a wrong `--evidence-dir`). A file that cannot be deleted keeps its
entries. Files are deleted before the commit: a crash in between leaves entries naming missing files,
which the next run marks.
Running it twice deletes nothing the second time (expired entries name no file).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from streetwatch.cases import locks
from streetwatch.cases import tables as t
from streetwatch.cases.retention import CaseRow, Expiry, RetentionSettings, SightingRow, plan_expiry
from streetwatch.cases.tables import as_utc

log = logging.getLogger("streetwatch.retention")
EVENT = "evidence_expired"
# groups of cases per transaction: a commit costs 10-30 ms on a busy disk (one per case made a 2,000-case backlog
# take a minute), while a batch holds SQLite's write lock, which the daemon's writer waits for, ~0.1 s
BATCH = 100


@dataclass
class RetentionReport:
    """What a run did (or, dry, would do): files per reason, entries marked, cases touched."""

    dry_run: bool
    files: Counter[str] = field(default_factory=Counter)  # deleted (planned, when dry) per reason
    missing: int = 0  # already gone: entries marked all the same
    entries: int = 0  # case and sighting entries marked expired
    cases: set[int] = field(default_factory=set)
    kept_shared: int = 0  # due, but named by an entry that is not: kept
    changed: int = 0  # files left for the next run: their rows or the file changed since the snapshot
    failed: int = 0  # could not be deleted (permissions, a path outside the evidence folder): entries kept
    elsewhere: int = 0  # not even its folder is under this evidence root (another host's?): entries kept

    def add(self, other: RetentionReport) -> None:
        self.files.update(other.files)
        self.cases |= other.cases
        for name in ("missing", "entries", "kept_shared", "changed", "failed", "elsewhere"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def lines(self) -> list[str]:
        verb = "would delete" if self.dry_run else "deleted"
        per = ", ".join(f"{reason} {n}" for reason, n in sorted(self.files.items())) or "none due"
        out = [f"{verb} {sum(self.files.values())} evidence file(s) of {len(self.cases)} case(s): {per}"]
        if not self.dry_run:
            out.append(f"{self.entries} evidence entries marked expired; {self.missing} file(s) were already gone")
        if self.kept_shared:
            out.append(f"{self.kept_shared} file(s) due but kept: still named by newer evidence")
        if self.changed or self.failed:
            out.append(f"{self.changed} file(s) left for the next run (changed since planned), "
                       f"{self.failed} could not be deleted")
        if self.elsewhere:
            out.append(f"{self.elsewhere} file(s) not found: their folders are not under this evidence root "
                       "(another host's evidence, or the wrong --evidence-dir?); their entries are left as they are")
        return out


def load_cases(ses: Session) -> tuple[list[CaseRow], dict[int, tuple[str, int]]]:
    """Every case with its sightings as `CaseRow`s, and each case's (problem type, version)."""
    sightings: dict[int, list[SightingRow]] = {}
    for sid, case_id, last_seen, created_at, evidence in ses.execute(select(
            t.Sighting.id, t.Sighting.case_id, t.Sighting.last_seen, t.Sighting.created_at, t.Sighting.evidence)):
        sightings.setdefault(case_id, []).append(SightingRow(sid, as_utc(last_seen), as_utc(created_at),
                                                                evidence or {}))
    rows, meta = [], {}
    for c in ses.execute(select(t.Case.id, t.Case.status, t.Case.last_seen, t.Case.updated_at, t.Case.evidence,
                                t.Case.recurrence_count, t.Case.merged_into, t.Case.problem_type, t.Case.version)):
        rows.append(CaseRow(c.id, c.status, as_utc(c.last_seen), as_utc(c.updated_at), c.evidence or {},
                            tuple(sightings.get(c.id, ())), c.recurrence_count, c.merged_into))
        meta[c.id] = (c.problem_type, c.version)
    return rows, meta


def expire_evidence(store, evidence_dir: Path, settings: RetentionSettings, now: datetime | None = None,
                    dry_run: bool = False, actor: str = "retention") -> RetentionReport:
    """Delete evidence past its retention (see the module docstring); one log line per run.

    Example:
        >>> expire_evidence(CaseStore(url), Path("data/evidence"), RetentionSettings()).files
        Counter({'unreviewed': 42, 'rejected': 9})
    """
    started = time.time()  # files modified after this were rewritten for a newer sighting: never deleted
    now = now or datetime.now(timezone.utc)
    with store.session() as ses:
        rows, meta = load_cases(ses)
    plan = plan_expiry(rows, settings, now)
    report = RetentionReport(dry_run, kept_shared=len(plan.kept_shared))
    if dry_run:
        report.files.update(plan.counts())
        report.cases |= plan.case_ids()
    else:
        root, snapshot, groups = Path(evidence_dir), {c.id: c for c in rows}, plan.groups()
        for i in range(0, len(groups), BATCH):
            _apply_batch(store, root, groups[i:i + BATCH], snapshot, meta, now, started, actor, report)
    log.info("evidence retention%s: %s", " (dry run)" if dry_run else "", "; ".join(report.lines()),
             extra={"event": "retention", "dry_run": dry_run, "files": dict(report.files), "missing": report.missing,
                    "entries": report.entries, "cases": len(report.cases), "kept_shared": report.kept_shared,
                    "changed": report.changed, "failed": report.failed, "elsewhere": report.elsewhere})
    return report


def _apply_batch(store, root: Path, groups: list[tuple[Expiry, ...]], snapshot: dict[int, CaseRow],
                 meta: dict[int, tuple[str, int]], now: datetime, started: float, actor: str,
                 report: RetentionReport) -> None:
    """Apply some groups in one transaction; counted into `report` only once it commits."""
    case_ids = {r.case_id for group in groups for e in group for r in e.refs}
    part = RetentionReport(dry_run=False)
    try:
        with store.sessions.begin() as ses:
            locks.lock_problem_types(ses, [meta[i][0] for i in case_ids])
            cases = {c.id: c for c in ses.scalars(select(t.Case).where(t.Case.id.in_(case_ids)))}
            sightings = {s.id: s for s in ses.scalars(select(t.Sighting).where(t.Sighting.case_id.in_(case_ids)))}
            for group in groups:
                ids = {r.case_id for e in group for r in e.refs}
                if _unchanged({i: snapshot[i] for i in ids}, meta, cases, sightings):
                    _expire_group(ses, root, group, cases, sightings, now, started, actor, part)
                else:
                    part.changed += len(group)
    except StaleDataError:  # a reviewer saved a case between our re-read and the commit: next run
        report.changed += sum(len(group) for group in groups)
        return
    report.add(part)


def _expire_group(ses: Session, root: Path, group: tuple[Expiry, ...], cases: dict[int, t.Case],
                  sightings: dict[int, t.Sighting], now: datetime, started: float, actor: str,
                  report: RetentionReport) -> None:
    marked: dict[int, dict[str, Any]] = {}  # case id -> its event's detail
    for expiry in group:
        outcome = _delete(root, expiry.path, started)
        if outcome in ("changed", "failed", "elsewhere"):
            setattr(report, outcome, getattr(report, outcome) + 1)
            continue
        if outcome == "deleted":
            report.files[expiry.reason] += 1
        else:
            report.missing += 1
        for ref in expiry.refs:
            row = cases[ref.case_id] if ref.sighting_id is None else sightings[ref.sighting_id]
            # what else the entry says (a redacted copy's summary of what it hides) stays with the hash
            row.evidence = {**row.evidence, ref.key: {**row.evidence[ref.key], "path": None, "sha256": ref.sha256,
                                                      "expired_at": now.isoformat()}}
            report.entries += 1
            _note(marked, ref, expiry, outcome)
    for case_id, detail in sorted(marked.items()):
        ses.add(t.CaseEvent(case_id=case_id, at=now, actor=actor, action=EVENT, detail=_finished(detail)))
        report.cases.add(case_id)


def _unchanged(snapshot: dict[int, CaseRow], meta: dict[int, tuple[str, int]], cases: dict[int, t.Case],
               sightings: dict[int, t.Sighting]) -> bool:
    """Whether the group's rows are as planned: same case versions (a case's every change bumps it), the same
    sightings in each case, with the same evidence and times."""
    for case_id, planned in snapshot.items():
        case = cases.get(case_id)
        if case is None or case.version != meta[case_id][1]:
            return False
        now_ids = {s.id for s in sightings.values() if s.case_id == case_id}
        if now_ids != {s.id for s in planned.sightings}:
            return False
        for s in planned.sightings:
            row = sightings[s.id]
            if (row.evidence or {}) != s.evidence or as_utc(row.last_seen) != s.last_seen:
                return False
    return True


def _delete(root: Path, rel: str, started: float) -> str:
    """deleted | missing (its folder is here, the file is not) | elsewhere (not even its folder is: the evidence of
    another host sharing the database, or the wrong root; its entries must not say it was deleted) | changed
    (written after the run began) | failed (outside the evidence folder, or the file system refused)."""
    parts = PurePosixPath(rel).parts
    if not parts or PurePosixPath(rel).is_absolute() or ".." in parts:
        log.warning("evidence path %r is not inside the evidence folder: not deleted", rel,
                    extra={"event": "retention_refused"})
        return "failed"
    path = root.joinpath(*parts)
    try:
        if path.stat().st_mtime > started:
            return "changed"
        path.unlink()
    except FileNotFoundError:
        return "missing" if path.parent.is_dir() else "elsewhere"
    except OSError as exc:
        log.warning("evidence file %s not deleted: %s", path, exc.strerror, extra={"event": "retention_failed"})
        return "failed"
    return "deleted"


def _note(marked: dict[int, dict[str, Any]], ref, expiry: Expiry, outcome: str) -> None:
    detail = marked.setdefault(ref.case_id, {"reasons": {}, "sightings": set(), "deleted": set(), "missing": set()})
    detail["reasons"].setdefault(expiry.reason.value, set()).add(ref.key)
    if ref.sighting_id is not None:
        detail["sightings"].add(ref.sighting_id)
    detail[outcome].add(expiry.path)


def _finished(detail: dict[str, Any]) -> dict[str, Any]:
    """The event's JSON: {"reasons": {reason: [keys]}, "sightings": [ids], "deleted": n, "missing": n}."""
    return {"reasons": {r: sorted(keys) for r, keys in sorted(detail["reasons"].items())},
            "sightings": sorted(detail["sightings"]), "deleted": len(detail["deleted"]),
            "missing": len(detail["missing"])}
