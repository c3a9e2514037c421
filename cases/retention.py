"""How long evidence JPEGs are kept, and the pure plan of which ones to delete now (issue 28).

Settings (`RetentionSettings`, the daemon's `retention:` section, `streetwatch cases expire-evidence`):

    raw_days_unconfirmed   30     raw tier of cases still `new` (never reviewed) or `rejected`
    raw_days_confirmed     365    raw tier of positive cases (confirmed, dispatched, resolved); None: keep
    redacted_days          None   redacted tier, whatever the case's status; None: keep while the case exists

The raw tier is `raw`, `annotated` and `crop` (the frame as the camera saw it); the redacted tier is the
blurred copies `redacted_raw`, `redacted_annotated`, `redacted_crop`. Other keys are never touched.

**When an entry is old.** Every evidence entry is aged by the row that holds it:
- a sighting's entry by the later of its `last_seen` and `created_at`: its files were written for the
  sighting's newest version (a daemon track rewrites them), and a batch run over month-old footage files
  them today; measuring from the footage time would delete them before anyone could review them;
- a case's own entry (the best frame, a copy of one sighting's) by the later of its `last_seen` and
  `updated_at` (set by each absorbed sighting and each review action): the picture an analyst opens
  stays while the case is active.
Per-row ages, not one age per case, because a rejected false positive keeps absorbing sightings (so a
rejected stall seen every day stays rejected): with one age per case its frames would pile up for ever.
A case seen again yesterday keeps yesterday's frames (that sighting is young) and its best frame (the case
is young); a 40-day-old sighting of it loses its raw frames unless they are that best frame.

**Which status.** A sighting's entries follow its case's status; a merged shell (whose evidence names
files of sightings now in the case that absorbed it) follows the case at the end of its `merged_into`
chain (a broken chain counts as unreviewed). A `new` case that was resolved before (`recurrence_count`
> 0: it came back) was judged real once and keeps the positive period.

**Shared files.** One file is referenced by its sighting and by the case (and by a merged shell). A file
is deleted only when every entry that names it is due; then every one of them is marked expired.

`plan_expiry` is pure (rows and `now` in, a `Plan` out); `cases.expire` applies a plan.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import Field, model_validator

from streetwatch.cases.evidence_tiers import RAW_KEYS, REDACTED_KEYS
from streetwatch.cases.status import POSITIVE, CaseStatus
from streetwatch.detector.config import StrictModel

MAX_DAYS = 36_500


class RetentionSettings(StrictModel):
    """How many days evidence files are kept; see the module docstring for what "older" is measured from."""

    raw_days_unconfirmed: int = Field(30, ge=1, le=MAX_DAYS, description=(
        "raw frames (raw, annotated, crop) of cases that were rejected, or are still `new` (never reviewed), "
        "older than this many days are deleted"))
    raw_days_confirmed: int | None = Field(365, ge=1, le=MAX_DAYS, description=(
        "raw frames of positive cases (confirmed, dispatched, resolved) older than this many days are "
        "deleted; null: kept while the case exists"))
    redacted_days: int | None = Field(None, ge=1, le=MAX_DAYS, description=(
        "redacted copies older than this many days are deleted, whatever the case's status; null (default): "
        "kept while the case exists"))

    @model_validator(mode="after")
    def _positive_not_shorter(self) -> RetentionSettings:
        if self.raw_days_confirmed is not None and self.raw_days_confirmed < self.raw_days_unconfirmed:
            raise ValueError(f"raw_days_confirmed ({self.raw_days_confirmed}) is shorter than raw_days_unconfirmed "
                             f"({self.raw_days_unconfirmed}): confirmed cases would lose their evidence before "
                             "rejected ones (swapped values?)")
        return self


class Reason(StrEnum):
    """Why an entry expired: the rule that applied to it."""

    UNREVIEWED = "unreviewed"  # raw tier of a case still `new`
    REJECTED = "rejected"  # raw tier of a rejected case
    POSITIVE = "positive"  # raw tier of a confirmed, dispatched or resolved case
    REDACTED = "redacted"  # redacted tier, any status


@dataclass(frozen=True)
class SightingRow:
    id: int
    last_seen: datetime
    created_at: datetime
    evidence: Mapping[str, Any]

    @property
    def age_from(self) -> datetime:
        return max(self.last_seen, self.created_at)


@dataclass(frozen=True)
class CaseRow:
    """A case as the planner needs it (times timezone-aware UTC), with its sightings."""

    id: int
    status: str
    last_seen: datetime
    updated_at: datetime
    evidence: Mapping[str, Any]
    sightings: tuple[SightingRow, ...] = ()
    recurrence_count: int = 0
    merged_into: int | None = None

    @property
    def age_from(self) -> datetime:
        return max(self.last_seen, self.updated_at)


@dataclass(frozen=True)
class Ref:
    """One evidence entry naming a file: `sighting_id` None is the case's own `evidence`."""

    case_id: int
    sighting_id: int | None
    key: str
    sha256: str | None


@dataclass(frozen=True)
class Expiry:
    """A file to delete, and every entry that names it (all due)."""

    path: str
    reason: Reason
    refs: tuple[Ref, ...]


@dataclass(frozen=True)
class Plan:
    expiries: tuple[Expiry, ...] = ()
    kept_shared: tuple[str, ...] = ()  # due for some entry, kept because another entry naming it is not

    def counts(self) -> Counter[str]:
        """Files per reason."""
        return Counter(e.reason.value for e in self.expiries)

    def case_ids(self) -> set[int]:
        return {r.case_id for e in self.expiries for r in e.refs}

    def groups(self) -> list[tuple[Expiry, ...]]:
        """The expiries split into groups that share no case: each is applied in one transaction (a file named
        by a merged shell and by the case that absorbed it joins the two)."""
        parent: dict[int, int] = {}

        def root(x: int) -> int:
            while parent.setdefault(x, x) != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for e in self.expiries:
            first = root(e.refs[0].case_id)
            for r in e.refs[1:]:
                parent[root(r.case_id)] = first
        grouped: dict[int, list[Expiry]] = {}
        for e in self.expiries:
            grouped.setdefault(root(e.refs[0].case_id), []).append(e)
        return [tuple(v) for _, v in sorted(grouped.items())]


def judged(status: str, recurrence_count: int = 0) -> Reason:
    """The raw-tier rule for a case of this status (merged shells are resolved by the caller)."""
    if status in POSITIVE or (status == CaseStatus.NEW and recurrence_count > 0):
        return Reason.POSITIVE
    return Reason.REJECTED if status == CaseStatus.REJECTED else Reason.UNREVIEWED


def case_rule(case: CaseRow, by_id: Mapping[int, CaseRow]) -> Reason:
    """`judged` for the case, following a merged shell to the case that absorbed it (a chain, a loop or a
    missing case ends as unreviewed: nothing positive is known about the evidence)."""
    seen: set[int] = set()
    while case.status == CaseStatus.MERGED:
        if case.merged_into is None or case.merged_into in seen or case.merged_into not in by_id:
            return Reason.UNREVIEWED
        seen.add(case.id)
        case = by_id[case.merged_into]
    return judged(case.status, case.recurrence_count)


def limit_days(settings: RetentionSettings, key: str, rule: Reason) -> tuple[Reason, int | None] | None:
    """(reason, days) for an entry under `key` of a case ruled by `rule`; None for keys retention never touches."""
    if key in REDACTED_KEYS:
        return Reason.REDACTED, settings.redacted_days
    if key in RAW_KEYS:
        return rule, settings.raw_days_confirmed if rule is Reason.POSITIVE else settings.raw_days_unconfirmed
    return None


def live_entries(evidence: Mapping[str, Any] | None) -> Iterable[tuple[str, str, str | None]]:
    """(key, path, sha256) of each entry that still names a file (expired ones have path None)."""
    for key, entry in (evidence or {}).items():
        if isinstance(entry, Mapping) and isinstance(entry.get("path"), str) and entry["path"]:
            yield key, entry["path"], entry.get("sha256")


@dataclass
class _File:
    refs: list[Ref] = field(default_factory=list)
    reasons: set[Reason] = field(default_factory=set)
    all_due: bool = True
    any_due: bool = False


def plan_expiry(cases: Iterable[CaseRow], settings: RetentionSettings, now: datetime) -> Plan:
    """What to delete at `now`: every file all of whose entries are older than their rule's days. Pure: reads
    only its arguments. Entries already expired are skipped, so a plan made after applying this one is empty."""
    rows = list(cases)
    by_id = {c.id: c for c in rows}
    files: dict[str, _File] = {}
    for case in rows:
        rule = case_rule(case, by_id)
        holders = [(None, case.evidence, case.age_from)] + [(s.id, s.evidence, s.age_from) for s in case.sightings]
        for sighting_id, evidence, age_from in holders:
            for key, path, sha in live_entries(evidence):
                limit = limit_days(settings, key, rule)
                if limit is None:
                    continue
                reason, days = limit
                due = days is not None and age_from < now - timedelta(days=days)
                f = files.setdefault(path, _File())
                f.refs.append(Ref(case.id, sighting_id, key, sha))
                f.reasons.add(reason)
                f.all_due &= due
                f.any_due |= due
    order = list(Reason)
    expiries = tuple(Expiry(path, min(f.reasons, key=order.index), tuple(f.refs))
                     for path, f in sorted(files.items()) if f.all_due)
    kept = tuple(path for path, f in sorted(files.items()) if f.any_due and not f.all_due)
    return Plan(expiries, kept)
