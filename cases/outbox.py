"""The outbox: work orders stored in the case database before they are sent, and the moves of their state.

    pending ──(claimed: attempts+1, next_attempt_at = now + lease)──> sending ──ok──> delivered
       ^                                                                  │
       └──── failed, attempts left: next_attempt_at = now + backoff ──────┤
                                                                          └── attempts spent, or refused ──> dead
    dead ──(replay: attempts 0, due now)──> pending

An order is written in the same transaction as the change it reports (`enqueue_change` beside the status
change), so a change is never committed without its order, nor an order without its change. Sending happens
outside any transaction (`cases.delivery`): a claim is committed first, and its lease (`next_attempt_at`)
keeps other workers off the order until the claimer reports, or until it died and the lease ran out.
On PostgreSQL the claim reads with FOR UPDATE SKIP LOCKED, so concurrent workers take different orders;
SQLite serialises writers (BEGIN IMMEDIATE), which makes the same claim exclusive there.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from streetwatch.cases import tables as t
from streetwatch.cases.review_tables import WorkOrder
from streetwatch.cases.status import CaseStatus
from streetwatch.cases.work_orders import (
    FILED,
    PUSHED,
    STATUS_EVENTS,
    WorkOrderSettings,
    code_profile,
    idempotency_key,
    wants_order,
    work_order_payload,
)

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
STATES = (PENDING, DELIVERED, DEAD)
# changes written where no outbox settings are known (the pipeline reopening a resolved case, the re-check's verdict):
# case_events action -> the order's event
MACHINE_EVENTS = {"reopened": "reopened", "recheck": "rechecked"}
# how far below the newest machine event already ordered the worker looks again: a transaction that took its event
# id earlier may commit later
WATERMARK_MARGIN = 1000


@dataclass(frozen=True)
class Claimed:
    """An order taken by one worker: what to send, and which attempt this is (to report back against)."""

    id: int
    case_id: int
    key: str
    payload: dict
    attempt: int
    actor: str


def _now() -> datetime:
    return datetime.now(timezone.utc)


def known_to_platform(ses: Session, case_id: int) -> bool:
    """Whether the case already has a work order (sent or on its way): the platform knows it, or will."""
    return ses.scalar(select(exists().where(WorkOrder.case_id == case_id))) or False


def enqueue(ses: Session, case: t.Case, event: str, event_id: int | None, settings: WorkOrderSettings,
            actor: str = "", now: datetime | None = None) -> WorkOrder:
    """Store the order for one case event (payload built now, from the rows of this transaction), due at once.
    The same key twice (a second sweep of one case) is the caller's to avoid: the key is unique."""
    key = idempotency_key(settings.source, case.id, event, event_id)
    order = WorkOrder(case_id=case.id, case_event_id=event_id, event=event, idempotency_key=key, state=PENDING,
                      attempts=0, next_attempt_at=now or _now(), created_at=now or _now(), actor=actor,
                      payload=work_order_payload(ses, case, event=event, event_id=event_id, key=key,
                                                 evidence_base_url=settings.evidence_base_url,
                                                 codes=code_profile(settings.codes)))
    ses.add(order)
    ses.flush()
    return order


def _last_event_id(ses: Session, case_id: int, action: str) -> int | None:
    return ses.scalar(select(t.CaseEvent.id).where(t.CaseEvent.case_id == case_id, t.CaseEvent.action == action)
                      .order_by(t.CaseEvent.id.desc()).limit(1))


def enqueue_change(ses: Session, case: t.Case, settings: WorkOrderSettings, actor: str = "") -> WorkOrder | None:
    """The order for the status change just written to `case` (its newest "status" event), when the settings
    want one (`work_orders.wants_order`); call inside the transaction that made the change.

    Example:
        >>> with store.sessions.begin() as ses:
        ...     case = actions.confirm(ses, 12, "alice", version=3)
        ...     enqueue_change(ses, case, settings, actor="alice").event
        'confirmed'
    """
    if not settings.enabled or case.status not in STATUS_EVENTS:
        return None
    if not wants_order(settings.send, case.status, known_to_platform(ses, case.id)):
        return None
    return enqueue(ses, case, STATUS_EVENTS[CaseStatus(case.status)], _last_event_id(ses, case.id, "status"),
                   settings, actor)


def enqueue_push(ses: Session, case: t.Case, settings: WorkOrderSettings, actor: str) -> WorkOrder:
    """An analyst's "send it again": a new case event and its own order (a new key: a person asked for it)."""
    ses.add(t.CaseEvent(case_id=case.id, actor=actor, action="push_requested", at=_now(), detail={}))
    ses.flush()
    return enqueue(ses, case, PUSHED, _last_event_id(ses, case.id, "push_requested"), settings, actor)


def enqueue_unsent(ses: Session, settings: WorkOrderSettings, limit: int) -> list[int]:
    """With `send: all`, a "filed" order for each case that has none yet (oldest first, at most `limit`): the
    pipeline files cases without knowing the outbox, so the worker picks them up. Returns the new orders' ids."""
    if not settings.enabled or settings.send != "all":
        return []
    unsent = ses.scalars(select(t.Case).where(t.Case.status != CaseStatus.MERGED,
                                              ~exists().where(WorkOrder.case_id == t.Case.id))
                         .order_by(t.Case.id).limit(limit)).all()
    return [enqueue(ses, case, FILED, None, settings, actor="outbox").id for case in unsent]


def enqueue_machine_changes(ses: Session, settings: WorkOrderSettings, limit: int) -> list[int]:
    """An order for each change the pipeline or the re-check made (`MACHINE_EVENTS`) to a case the platform knew
    before it (a work order older than the change), oldest first, at most `limit`; its payload is the case as it
    is now. Returns the new orders' ids."""
    if not settings.enabled:
        return []
    done = ses.scalar(select(func.max(WorkOrder.case_event_id))
                      .where(WorkOrder.event.in_(list(MACHINE_EVENTS.values())))) or 0
    known_since = (select(func.min(WorkOrder.created_at)).where(WorkOrder.case_id == t.CaseEvent.case_id)
                   .scalar_subquery())
    events = ses.scalars(select(t.CaseEvent).where(
        t.CaseEvent.id > done - WATERMARK_MARGIN, t.CaseEvent.action.in_(list(MACHINE_EVENTS)),
        t.CaseEvent.at > known_since, ~exists().where(WorkOrder.case_event_id == t.CaseEvent.id))
        .order_by(t.CaseEvent.id).limit(limit)).all()
    made = []
    for event in events:
        case = ses.get(t.Case, event.case_id)
        assert case is not None  # the event's foreign key
        made.append(enqueue(ses, case, MACHINE_EVENTS[event.action], event.id, settings, actor=event.actor).id)
    return made


def claim(ses: Session, worker: str, settings: WorkOrderSettings, now: datetime | None = None,
          limit: int | None = None) -> list[Claimed]:
    """Take up to `limit` due orders for `worker`: each gets one more attempt and a lease (commit before sending)."""
    now = now or _now()
    query = (select(WorkOrder).where(WorkOrder.state == PENDING, WorkOrder.next_attempt_at <= now)
             .order_by(WorkOrder.next_attempt_at, WorkOrder.id).limit(limit or settings.batch)
             .with_for_update(skip_locked=True))  # PostgreSQL; SQLite ignores it and serialises the transaction
    taken = []
    for order in ses.scalars(query):
        order.attempts += 1
        order.next_attempt_at = now + timedelta(seconds=settings.lease_s)
        order.claimed_by = worker
        taken.append(Claimed(order.id, order.case_id, order.idempotency_key, dict(order.payload), order.attempts,
                             order.actor))
    ses.flush()
    return taken


def record_success(ses: Session, claimed: Claimed, status_code: int, now: datetime | None = None) -> None:
    """Delivered (final even when another worker's lease overlapped ours: the platform dedupes by the key)."""
    order = ses.get(WorkOrder, claimed.id)
    if order is None or order.state == DELIVERED:
        return
    order.state, order.delivered_at, order.last_status_code, order.last_error = DELIVERED, now or _now(), status_code, None
    order.claimed_by = None
    ses.add(t.CaseEvent(case_id=claimed.case_id, actor=claimed.actor or "outbox", action="pushed", at=now or _now(),
                        detail={"work_order": claimed.id, "event": order.event, "idempotency_key": claimed.key,
                                "status_code": status_code, "attempts": claimed.attempt}))


def record_failure(ses: Session, claimed: Claimed, error: str, status_code: int | None, delay_s: float | None,
                   settings: WorkOrderSettings, now: datetime | None = None) -> str:
    """A failed attempt: due again after `delay_s`, or dead when `delay_s` is None (refused) or attempts are spent.
    Returns the order's state. An order claimed again since (our lease ran out) is left to its new claimer."""
    order = ses.get(WorkOrder, claimed.id)
    if order is None:
        return DEAD
    if order.state != PENDING or order.attempts != claimed.attempt:
        return order.state
    now = now or _now()
    order.last_error, order.last_status_code, order.claimed_by = error[:500], status_code, None
    if delay_s is None or order.attempts >= settings.attempts:
        order.state, order.dead_at = DEAD, now
    else:
        order.next_attempt_at = now + timedelta(seconds=delay_s)
    return order.state


def replay(ses: Session, ids: list[int] | None = None, now: datetime | None = None) -> list[int]:
    """Dead orders back to pending, due now, with a fresh count of attempts (`ids`; None: every dead order).
    Returns the ids replayed; ids that are not dead are left alone."""
    query = select(WorkOrder).where(WorkOrder.state == DEAD)
    if ids is not None:
        query = query.where(WorkOrder.id.in_(ids))
    done = []
    for order in ses.scalars(query.order_by(WorkOrder.id)):
        order.state, order.attempts, order.next_attempt_at, order.dead_at = PENDING, 0, now or _now(), None
        order.replays += 1
        done.append(order.id)
    return done


def counts(ses: Session) -> dict[str, int]:
    """Orders per state (every state present, 0 when none)."""
    query = select(WorkOrder.state, func.count(WorkOrder.id)).group_by(WorkOrder.state)
    found = Counter({state: n for state, n in ses.execute(query)})
    return {state: found.get(state, 0) for state in STATES}


def orders(ses: Session, state: str | None = None, limit: int = 100) -> list[WorkOrder]:
    """Orders (of one state), oldest first."""
    query = select(WorkOrder).order_by(WorkOrder.id).limit(limit)
    return list(ses.scalars(query if state is None else query.where(WorkOrder.state == state)))


def next_due(ses: Session) -> datetime | None:
    """When the next pending order is due (None: nothing pending)."""
    return ses.scalar(select(WorkOrder.next_attempt_at).where(WorkOrder.state == PENDING)
                      .order_by(WorkOrder.next_attempt_at).limit(1))
