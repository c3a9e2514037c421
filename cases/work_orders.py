"""Work orders for a city-management platform: what is sent, when a case gets one, how a failed send waits.

Pure logic only (no network, no session writes): the settings, the rule deciding which status changes
become orders, the idempotency key, the signature, the backoff, and the payload built from a case's rows.
`cases.outbox` stores the orders; `cases.delivery` sends them. The payload's fields are listed in
docs/work_orders.md.

    work_orders:                       (review settings YAML, cameras.yaml, or `streetwatch outbox --config`)
      url: https://platform.example/api/events
      secret: ${PLATFORM_KEY}          HMAC-SHA256 key: X-Streetwatch-Signature: sha256=<hex of the body>
      send: confirmed                  confirmed (default) | all | off
      attempts: 8                      then the order is dead-lettered (`streetwatch outbox dead`, `replay`)
      backoff_s: 30                    30, 60, 120 ... seconds between attempts, at most max_backoff_s
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal

from pydantic import Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from streetwatch.cases import tables as t
from streetwatch.cases.evidence_tiers import outward_record
from streetwatch.cases.export import coded_names, evidence_sighting, provenance
from streetwatch.cases.grids import grid_for_order
from streetwatch.cases.status import POSITIVE, CaseStatus
from streetwatch.cases.store import as_utc
from streetwatch.detector.codes import OWN_SCHEME, CodeProfile, load_code_profile
from streetwatch.detector.config import StrictModel
from streetwatch.detector.errors import ConfigError

SCHEMA = "streetwatch.work_order/1"  # a superset of the old webhook's streetwatch.case/1: its keys keep their meaning
SIGNATURE_HEADER = "X-Streetwatch-Signature"
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})  # anything else outside 2xx: the platform said no
# the event an order reports, by the status a case moved to ("filed": a case sent as the pipeline filed it, with
# `send: all`; "pushed": an analyst asked for it to be sent again; "reopened" and "rechecked" also come from the
# pipeline and the re-check: `cases.outbox.MACHINE_EVENTS`)
STATUS_EVENTS = {**{s: s.value for s in (CaseStatus.CONFIRMED, CaseStatus.DISPATCHED, CaseStatus.RESOLVED,
                                         CaseStatus.REJECTED)}, CaseStatus.NEW: "reopened"}
FILED, PUSHED = "filed", "pushed"
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class WorkOrderSettings(StrictModel):
    """Where and how work orders go. No `url`: the outbox is off (nothing is queued, nothing is sent)."""

    url: str | None = Field(None, description="the platform's endpoint: each work order is POSTed here as JSON")
    secret: str | None = Field(None, description="HMAC-SHA256 key signing each body (X-Streetwatch-Signature)")
    send: Literal["confirmed", "all", "off"] = Field(
        "confirmed", description="confirmed: a case goes out once a person judged it real (confirmed, dispatched or "
                                 "resolved), then every change of it; all: every case as filed, and every change")
    codes: str = Field(OWN_SCHEME, min_length=1, description="the code scheme the platform takes: streetwatch (as "
                                                           "filed), cjt214-2013, gbt47678-2026 or a bureau's CSV "
                                                           "table (docs/codes.md)")
    source: str = Field("streetwatch", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$",
                        description="names this installation in each idempotency key (two installations sending to "
                                    "one platform never share a key)")
    attempts: int = Field(8, ge=1, le=100, description="attempts before an order is dead-lettered")
    backoff_s: float = Field(30.0, ge=0, le=86_400, description="wait after the first failed attempt; doubles after "
                                                                "each further one")
    max_backoff_s: float = Field(3600.0, ge=0, le=7 * 86_400, description="longest wait, Retry-After included")
    timeout_s: float = Field(10.0, gt=0, le=600, description="per request: connect, send and read the answer")
    batch: int = Field(20, ge=1, le=1000, description="orders claimed per turn of a worker")
    poll_s: float = Field(5.0, gt=0, le=3600, description="a worker's pause when nothing is due")
    evidence_base_url: str | None = Field(None, description="prefix of evidence links (e.g. the review app's "
                                                            "https://host/evidence/); without it, paths only")
    dispatch_hours: float = Field(24.0, gt=0, le=24 * 365, description="deadline of a platform's 派遣 (dispatched) "
                                  "report that names none: streetwatch re-checks the place after it")
    deliver_in_app: bool = Field(True, description="`streetwatch serve` runs a delivery worker itself; false: "
                                                   "the daemon or `streetwatch outbox deliver` sends")

    @field_validator("url", "secret")
    @classmethod
    def _from_env(cls, value: str | None) -> str | None:
        """`${VAR}` is read from the environment, so the key need not be written into the file."""
        if value is None:
            return None

        def var(match: re.Match[str]) -> str:
            if match[1] not in os.environ:
                raise ValueError(f"environment variable {match[1]} is not set")
            return os.environ[match[1]]

        return _ENV.sub(var, value).strip() or None

    @field_validator("url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value, re.IGNORECASE):
            raise ValueError("url must be an http:// or https:// address")
        return value

    @field_validator("codes")
    @classmethod
    def _scheme(cls, value: str) -> str:
        try:
            code_profile(value)
        except ConfigError as exc:
            raise ValueError(str(exc).removeprefix("codes: ")) from None
        return value

    @property
    def enabled(self) -> bool:
        return bool(self.url) and self.send != "off"

    @property
    def lease_s(self) -> float:
        """How long a claimed order stays claimed: a worker that died mid-send frees it after this. Long enough for
        a whole batch sent one after another, each up to its timeout, or a slow platform would see the end of a
        batch sent twice (by its claimer, late, and by a worker that took the order over)."""
        return (self.batch + 1) * self.timeout_s + 30.0


@lru_cache(maxsize=8)
def code_profile(setting: str) -> CodeProfile | None:
    """The profile `codes` names (read once per process; None: the codes as filed)."""
    return load_code_profile(setting)


def wants_order(send: str, after: str, known_to_platform: bool) -> bool:
    """Whether a case that moved to status `after` gets a work order: with `send: confirmed`, once a person judged
    it real, and from then on every change (a rejection withdraws it on the platform); with `all`, every change.

    Example: `wants_order("confirmed", "rejected", known_to_platform=False)` is False (never sent, nothing to withdraw).
    """
    if send == "off":
        return False
    return send == "all" or after in POSITIVE or known_to_platform


def idempotency_key(source: str, case_id: int, event: str, event_id: int | None) -> str:
    """Stable per case and event: a re-sent order (retry, replay, a worker restart) carries the same key, so the
    platform can drop the second copy. `event_id` is the case_events row of the change; "filed" has none (one per
    case)."""
    return f"{source}:case-{case_id}:{event}" + ("" if event_id is None else f":{event_id}")


def sign(secret: str, body: bytes) -> str:
    """The `X-Streetwatch-Signature` value: `sha256=<hex HMAC-SHA256 of the exact body bytes>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def body_of(payload: dict) -> bytes:
    """The bytes sent (and signed): sorted keys, UTF-8, so a replay of the same payload signs identically."""
    return json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()


def retry_delay_s(attempt: int, settings: WorkOrderSettings, retry_after_s: float | None = None) -> float:
    """Seconds before attempt `attempt + 1`: the platform's Retry-After when it gave one, else backoff_s doubling
    per attempt; both capped at max_backoff_s."""
    if retry_after_s is not None:
        return min(settings.max_backoff_s, max(0.0, retry_after_s))
    return min(settings.max_backoff_s, settings.backoff_s * 2 ** max(0, attempt - 1))


def retryable(status_code: int | None) -> bool:
    """A network error or timeout (no status), 408, 425, 429 and 5xx are tried again; any other answer is final."""
    return status_code is None or status_code in RETRY_STATUS


def _iso(dt: datetime | None) -> str | None:
    return as_utc(dt).isoformat() if dt else None


def _evidence(case: t.Case, base_url: str | None) -> tuple[dict[str, dict], str | None]:
    """The redacted tier only (`outward_record`), each file with its hash and, given a base URL, a link."""
    evidence, note = outward_record(case.evidence)
    for entry in evidence.values():
        entry["url"] = (base_url.rstrip("/") + "/" + entry["path"]) if base_url and entry.get("path") else None
    return evidence, note


def _camera(ses: Session, camera_id: str | None) -> dict | None:
    cam = ses.get(t.Camera, camera_id) if camera_id else None
    if cam is None:
        return None if camera_id is None else {"id": camera_id, "name": None, "lat": None, "lon": None}
    return {"id": cam.id, "name": cam.name, "lat": cam.lat, "lon": cam.lon}


def work_order_payload(ses: Session, case: t.Case, *, event: str = "confirmed", event_id: int | None = None,
                       key: str | None = None, evidence_base_url: str | None = None,
                       codes: CodeProfile | None = None) -> dict[str, Any]:
    """What the platform receives for one case and event: codes and names, position or camera and box, times,
    redacted evidence (links and SHA-256), the model and the footage it came from. Keys in docs/work_orders.md.

    Example:
        >>> work_order_payload(ses, ses.get(t.Case, 12), event="confirmed", event_id=40)["event"]
        'confirmed'
    """
    events = ses.scalars(select(t.CaseEvent).where(t.CaseEvent.case_id == case.id, t.CaseEvent.action == "status")
                         .order_by(t.CaseEvent.id.desc())).all()
    verdict = next((e for e in events if (e.detail or {}).get("to") == CaseStatus.CONFIRMED), None)
    best = evidence_sighting(case, list(ses.scalars(select(t.Sighting).where(t.Sighting.case_id == case.id))))
    run = ses.get(t.Run, best.run_id) if best is not None and best.run_id is not None else None
    evidence, note = _evidence(case, evidence_base_url)
    return {
        "schema": SCHEMA,
        "event": event,
        "event_id": event_id,
        "idempotency_key": key,
        "case_id": case.id,
        "problem_type": case.problem_type,
        # code, name_zh, name_en, category_zh in the platform's scheme (`codes`; None: as filed), the scheme's name,
        # whether its table was checked against the official text, and the code the case was filed with
        **coded_names(case, codes),
        "category": case.category,
        "status": case.status,
        "flag": case.flag,  # the re-check's finding after a dispatch deadline: overdue | verified_handled | null
        "camera_id": case.camera_id,
        "camera": _camera(ses, case.camera_id),
        "first_seen": _iso(case.first_seen),
        "last_seen": _iso(case.last_seen),
        "sighting_count": case.sighting_count,
        "recurrence_count": case.recurrence_count,
        "confidence": round(case.best_confidence, 4),
        "position": None if case.lat is None else {"lat": case.lat, "lon": case.lon, "uncertainty_m": case.uncertainty_m,
                                                    "crs": "WGS84"},
        "grid": grid_for_order(ses, case),  # the unit grid (单元网格): null while none are loaded (cases.grids)
        "zone_id": case.zone_id,
        "scene_id": case.scene_id,
        "box_norm": (case.box_norm or {}).get("xyxy"),  # 0..1 of the camera image (with a scene: its reference)
        "due_at": _iso(case.due_at),
        "confirmed_by": verdict.actor if verdict else None,
        "confirmed_at": _iso(verdict.at) if verdict else None,
        # the redacted copies only, under the plain names raw/annotated/crop; expired ones by hash
        "evidence": evidence,
        "evidence_note": note,
        "evidence_source": provenance(best) if best else None,  # the footage file (or stream) and seconds into it
        "model": run.model if run is not None else None,  # name:sha256-prefix of the model that found the evidence
        "run_id": run.id if run is not None else None,
        "version": case.version,
        # streetwatch's own re-check (核查) of the place after the deadline: "verified_handled" (gone: resolved) or
        # "overdue" (still there), with when and what footage it looked at; None before any
        "recheck": _recheck(ses, case),
    }


def _recheck(ses: Session, case: t.Case) -> dict[str, Any] | None:
    last = ses.scalars(select(t.CaseEvent).where(t.CaseEvent.case_id == case.id, t.CaseEvent.action == "recheck")
                       .order_by(t.CaseEvent.id.desc()).limit(1)).first()
    if last is None:
        return None
    detail = last.detail or {}
    return {"result": detail.get("result"), "at": _iso(last.at), "analysed": detail.get("analysed"),
            "due_at": detail.get("due_at")}
