"""Hand a confirmed case to the bureau's case system: POST it as JSON to a configured URL, with retries.

Every attempt is a row in `webhook_deliveries` (the exact JSON sent, the HTTP status, an excerpt of
the answer or the network error, how long it took). A success also adds a "pushed" case event.
No database transaction is held open while waiting on the network.

Retried: network errors, timeouts, HTTP 408, 429 and 5xx, with exponential backoff (a 429/503
`Retry-After` in seconds is honoured, capped). Not retried: other 4xx (the receiver said no).
With a secret, the body is signed: `X-Streetwatch-Signature: sha256=<hex HMAC-SHA256 of the body>`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from streetwatch.cases import tables as t
from streetwatch.cases.evidence_tiers import outward_record
from streetwatch.cases.export import evidence_sighting, names_of, provenance
from streetwatch.cases.review_tables import WebhookDelivery
from streetwatch.cases.status import CaseStatus
from streetwatch.cases.store import as_utc
from streetwatch.detector.errors import StreetwatchError
from streetwatch.review.i18n import Msg

PUSHABLE = (CaseStatus.CONFIRMED, CaseStatus.DISPATCHED)
SCHEMA = "streetwatch.case/1"
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class DeliveryError(StreetwatchError):
    """A case cannot be pushed (wrong status, no URL configured)."""


@dataclass(frozen=True)
class WebhookSettings:
    url: str
    secret: str | None = None
    attempts: int = 4
    backoff_s: float = 1.0  # waits backoff_s, 2*backoff_s, 4*... between attempts
    max_backoff_s: float = 30.0
    timeout_s: float = 10.0


@dataclass(frozen=True)
class PushResult:
    ok: bool
    attempts: int
    status_code: int | None
    error: str | None
    delivery_ids: tuple[int, ...]


def case_payload(ses: Session, case: t.Case) -> dict:
    """The JSON a bureau system receives for one case (stable keys; evidence by relative path and SHA-256, of the
    redacted copies only: `cases.evidence_tiers.outward_record`)."""
    confirmed = ses.scalars(select(t.CaseEvent).where(t.CaseEvent.case_id == case.id, t.CaseEvent.action == "status")
                            .order_by(t.CaseEvent.id.desc())).all()
    verdict = next((e for e in confirmed if (e.detail or {}).get("to") == CaseStatus.CONFIRMED), None)
    iso = lambda dt: as_utc(dt).isoformat() if dt else None  # noqa: E731
    best = evidence_sighting(case, list(ses.scalars(select(t.Sighting).where(t.Sighting.case_id == case.id))))
    evidence, note = outward_record(case.evidence)
    return {
        "schema": SCHEMA,
        "case_id": case.id,
        "problem_type": case.problem_type,
        **names_of(case),  # the bureau's code and the Chinese/English names, as the taxonomy had them when filed
        "category": case.category,
        "status": case.status,
        "camera_id": case.camera_id,
        "first_seen": iso(case.first_seen),
        "last_seen": iso(case.last_seen),
        "sighting_count": case.sighting_count,
        "recurrence_count": case.recurrence_count,
        "confidence": round(case.best_confidence, 4),
        "position": None if case.lat is None else {"lat": case.lat, "lon": case.lon, "uncertainty_m": case.uncertainty_m,
                                                    "crs": "WGS84"},
        "zone_id": case.zone_id,
        "box_norm": (case.box_norm or {}).get("xyxy"),
        "due_at": iso(case.due_at),
        "confirmed_by": verdict.actor if verdict else None,
        "confirmed_at": iso(verdict.at) if verdict else None,
        # the redacted copies only (under the plain names raw/annotated/crop), expired ones by hash; a case without
        # any sends no image, and says so in evidence_note
        "evidence": evidence,
        "evidence_note": note,
        "evidence_source": provenance(best) if best else None,  # the footage file (or stream) and seconds into it
        "version": case.version,
    }


def _retry_after(resp: httpx.Response) -> float | None:
    try:
        return float(resp.headers["retry-after"])
    except (KeyError, ValueError):
        return None


def push_case(sessions: sessionmaker, case_id: int, settings: WebhookSettings, actor: str, *,
              client: httpx.Client | None = None, sleep: Callable[[float], None] = time.sleep) -> PushResult:
    """POST one confirmed (or dispatched) case to `settings.url`, retrying; every attempt is recorded.

    Example:
        >>> push_case(store.sessions, 12, WebhookSettings("http://bureau.local/cases"), actor="alice").ok
        True
    """
    if not settings.url:
        raise DeliveryError(Msg("no webhook URL is configured (set webhook_url in the review settings)"))
    with sessions.begin() as ses:
        case = ses.get(t.Case, case_id)
        if case is None:
            raise DeliveryError(Msg("case %(id)s: no such case", id=case_id))
        if case.status not in PUSHABLE:
            raise DeliveryError(Msg("case %(id)s is %(status)s; only %(pushable)s cases are pushed", id=case_id,
                                    status=Msg(case.status), pushable=" or ".join(PUSHABLE)))
        payload = case_payload(ses, case)
    body = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "streetwatch-webhook/1",
               "Idempotency-Key": f"streetwatch-case-{case_id}-v{payload['version']}"}
    if settings.secret:
        digest = hmac.new(settings.secret.encode(), body, hashlib.sha256).hexdigest()
        headers["X-Streetwatch-Signature"] = f"sha256={digest}"
    own = client is None
    client = client or httpx.Client(timeout=settings.timeout_s, follow_redirects=False)
    ids: list[int] = []
    status: int | None = None
    error: str | None = None
    try:
        for attempt in range(1, max(1, settings.attempts) + 1):
            started = time.perf_counter()
            status, error, excerpt, wait = None, None, None, None
            try:
                resp = client.post(settings.url, content=body, headers=headers)
                status, excerpt = resp.status_code, resp.text[:500]
                if not 200 <= status < 300:
                    error = f"HTTP {status}"
                    wait = _retry_after(resp)
            except httpx.HTTPError as exc:
                error = f"{exc.__class__.__name__}: {exc}"[:500]
            ok = error is None
            with sessions.begin() as ses:
                row = WebhookDelivery(case_id=case_id, url=settings.url, attempt=attempt, actor=actor, payload=payload,
                                      status_code=status, response_excerpt=excerpt, error=error, ok=ok,
                                      duration_ms=round((time.perf_counter() - started) * 1000, 1),
                                      at=datetime.now(timezone.utc))
                ses.add(row)
                if ok:
                    ses.add(t.CaseEvent(case_id=case_id, actor=actor, action="pushed", at=datetime.now(timezone.utc),
                                        detail={"url": settings.url, "status_code": status, "attempts": attempt}))
                ses.flush()
                ids.append(row.id)
            if ok:
                return PushResult(True, attempt, status, None, tuple(ids))
            retryable = status is None or status in RETRY_STATUS
            if not retryable or attempt == settings.attempts:
                break
            backoff = settings.backoff_s * 2 ** (attempt - 1)
            sleep(min(settings.max_backoff_s, wait if wait is not None else backoff))
    finally:
        if own:
            client.close()
    return PushResult(False, len(ids), status, error, tuple(ids))


def deliveries(ses: Session, case_id: int) -> list[WebhookDelivery]:
    """Every recorded attempt for a case, oldest first."""
    return list(ses.scalars(select(WebhookDelivery).where(WebhookDelivery.case_id == case_id)
                            .order_by(WebhookDelivery.id)))
