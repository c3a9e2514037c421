"""Which evidence files a user of the review app may open, and the log of every raw one opened.

Everyone logged in sees the redacted copies (`cases.evidence_tiers`). Raw files are for the roles in the
setting `raw_evidence_roles` (default: admins): pages show them the redacted copy too, with a link to the
original, and every raw file served is an audit row (who, when, which case, which file). A file the database
does not name as a redacted copy counts as raw: a page never guesses from a file name.

The page asks for a file with `?case=<id>`, so the lookup reads one case's rows; a file that case does not
name (or a URL without the hint) is looked up in every case, so a wrong hint neither opens a raw file to an
analyst nor lets a view go unlogged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Text, cast, select
from sqlalchemy.orm import Session

from streetwatch.cases import tables as t
from streetwatch.cases.evidence_tiers import (
    REDACTED_EXPIRED,
    REDACTED_KEYS,
    is_redacted_path,
    key_of,
    outward,
    outward_record,
    raw_tier,
)
from streetwatch.cases.review_tables import AuditEvent
from streetwatch.review.i18n import Msg
from streetwatch.review.users import Current

RAW_VIEWED = "raw_evidence_viewed"
RAW_REFUSED = Msg("this evidence file is not a redacted copy, and your role may open only redacted copies")


def may_see_raw(cur: Current, raw_roles: list[str]) -> bool:
    return cur.role in raw_roles


@dataclass(frozen=True)
class EvidenceView:
    """What a page shows of an evidence dict to one user (templates call these)."""

    raw_ok: bool

    def shown(self, evidence: dict | None) -> dict[str, dict]:
        """The redacted copies under their plain names: what every page shows, whoever looks."""
        return outward(evidence)

    def originals(self, evidence: dict | None) -> dict[str, dict]:
        """The raw files, for the "show original (logged)" links; nothing for a role not allowed them."""
        return raw_tier(evidence) if self.raw_ok else {}

    def expired(self, evidence: dict | None) -> bool:
        """Whether the case had redacted copies whose files retention has deleted (none left to show)."""
        return outward_record(evidence)[1] == REDACTED_EXPIRED

    def listed(self, evidence: dict | None) -> dict[str, dict]:
        """The entries the page lists with their hashes: both tiers, or the redacted one only."""
        return {k: v for k, v in (evidence or {}).items() if isinstance(v, dict) and (self.raw_ok or k in REDACTED_KEYS)}


@dataclass(frozen=True)
class Named:
    """Who names an evidence file: whether it is a redacted copy, the case, the key (e.g. "crop")."""

    redacted: bool
    case_id: int | None
    key: str | None


def _rows_of_case(ses: Session, case_id: int) -> list[tuple[int, dict | None]]:
    case = ses.get(t.Case, case_id)
    if case is None:
        return []
    rows: list[tuple[int, dict | None]] = [(case.id, case.evidence)]
    rows += [(case.id, ev) for ev in ses.scalars(select(t.Sighting.evidence).where(t.Sighting.case_id == case_id))]
    rows += [(case.id, (d or {}).get("evidence")) for d in ses.scalars(
        select(t.CaseEvent.detail).where(t.CaseEvent.case_id == case_id, t.CaseEvent.action == "recheck"))]
    return rows


def _like(rel: str) -> str:
    """A LIKE pattern for the path as the JSON column stores it (quoted, non-ASCII escaped: SQLAlchemy writes
    with json.dumps); it only narrows the rows, `key_of` then compares exactly."""
    quoted = json.dumps(rel).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{quoted}%"


def _rows_naming(ses: Session, rel: str) -> list[tuple[int | None, dict | None]]:
    pattern = _like(rel)
    rows: list[tuple[int | None, dict | None]] = []
    rows += [(cid, ev) for cid, ev in ses.execute(select(t.Case.id, t.Case.evidence)
                                                  .where(cast(t.Case.evidence, Text).like(pattern, escape="\\")))]
    rows += [(cid, ev) for cid, ev in ses.execute(select(t.Sighting.case_id, t.Sighting.evidence)
                                                  .where(cast(t.Sighting.evidence, Text).like(pattern, escape="\\")))]
    rows += [(cid, (d or {}).get("evidence")) for cid, d in ses.execute(
        select(t.CaseEvent.case_id, t.CaseEvent.detail).where(t.CaseEvent.action == "recheck",
                                                             cast(t.CaseEvent.detail, Text).like(pattern, escape="\\")))]
    return rows


def _named(rows: list[tuple[int | None, dict | None]], rel: str) -> Named | None:
    naming = [(cid, ev, key_of(ev, rel)) for cid, ev in rows if key_of(ev, rel)]
    if not naming:
        return None
    cid, _, key = next((n for n in naming if n[2] not in REDACTED_KEYS), naming[0])  # a raw name wins
    return Named(is_redacted_path([ev for _, ev, _ in naming], rel), cid, key)


def name_file(ses: Session, rel: str, case_hint: int | None) -> Named:
    """Whether `rel` is a redacted copy, and the case naming it: `case_hint`'s rows first, then every case's.
    A file no case names is not a redacted copy (`case_id` None)."""
    found = _named(_rows_of_case(ses, case_hint), rel) if case_hint is not None else None
    return found or _named(_rows_naming(ses, rel), rel) or Named(False, None, None)


def log_raw_view(ses: Session, cur: Current, named: Named, rel: str, ip: str, at: datetime) -> None:
    """The audit row of one raw file served: who (`actor`), when (`at`), which case (`target`), which file."""
    ses.add(AuditEvent(actor=cur.username, action=RAW_VIEWED, target="" if named.case_id is None else str(named.case_id),
                       detail={"case": named.case_id, "path": rel, "key": named.key, "role": cur.role, "ip": ip},
                       at=at))


def outward_detail(detail: dict | None) -> dict:
    """An event's detail with any evidence it carries (a re-check's new sighting) cut to the redacted tier."""
    detail = dict(detail or {})
    if isinstance(detail.get("evidence"), dict):
        detail["evidence"] = outward_record(detail["evidence"])[0]
    return detail
