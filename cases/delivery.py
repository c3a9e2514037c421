"""The delivery worker: takes due work orders from the outbox and POSTs them to the platform, at least once.

Each turn: (with `send: all`) give unsent cases their "filed" order, claim up to `batch` due orders (a
committed claim with a lease), POST each one outside any transaction, then record the attempt
(`webhook_deliveries`) and its outcome (`cases.outbox`) in one transaction. Everything a retry needs is in
the order's row, so a new worker (a restart, another host) resumes where the last one stopped.

Headers of every attempt: `Idempotency-Key` (also `idempotency_key` in the body), `X-Streetwatch-Event`,
`X-Streetwatch-Attempt` and, with a secret, `X-Streetwatch-Signature: sha256=<hex HMAC-SHA256 of the body>`.
A 2xx delivers; a network error, timeout, 408, 425, 429 or 5xx waits (Retry-After honoured, capped) and
tries again until `attempts` are spent; any other answer is a refusal and goes straight to the dead letters.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import httpx
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from streetwatch.cases import outbox
from streetwatch.cases.review_tables import WebhookDelivery
from streetwatch.cases.work_orders import (
    SIGNATURE_HEADER,
    WorkOrderSettings,
    body_of,
    retry_delay_s,
    retryable,
    sign,
)

log = logging.getLogger("streetwatch.outbox")


@dataclass(frozen=True)
class TurnReport:
    """What one turn of a worker did."""

    queued: int = 0  # orders made by the worker: "filed" (send: all), "reopened" and "rechecked"
    claimed: int = 0
    delivered: int = 0
    retrying: int = 0
    dead: int = 0


def retry_after_s(value: str | None, now: datetime) -> float | None:
    """A Retry-After header in seconds: either form HTTP allows (`120` or an HTTP date); None when absent or
    unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - now).total_seconds()) if when.tzinfo else None


def worker_name() -> str:
    """Names a worker in claims (`claimed_by`): host, process and thread."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{threading.get_ident() % 100_000}"


class OutboxWorker:
    """Delivers work orders from the case database at `sessions`. `settings` may be a callable (read each turn,
    so a daemon reload applies).

    Example:
        >>> worker = OutboxWorker(store.sessions, WorkOrderSettings(url="https://platform.example/events"))
        >>> worker.deliver_once().delivered
        3
    """

    def __init__(self, sessions: sessionmaker, settings: WorkOrderSettings | Callable[[], WorkOrderSettings], *,
                 name: str | None = None, client: httpx.Client | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.sessions = sessions
        self._settings = settings if callable(settings) else (lambda: settings)
        self.name = name or worker_name()
        self._client, self._own_client = client, client is None
        self.now = now

    @property
    def settings(self) -> WorkOrderSettings:
        return self._settings()

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(follow_redirects=False, headers={"User-Agent": "streetwatch-outbox/1"})
        return self._client

    def close(self) -> None:
        if self._own_client and self._client is not None:
            self._client.close()
            self._client = None

    def deliver_once(self) -> TurnReport:
        """One turn: queue unsent cases (send: all) and the pipeline's and re-check's changes of cases the platform
        knows, claim due orders, send each once. Nothing to do without a URL."""
        s = self.settings
        if not s.enabled:
            return TurnReport()
        try:
            with self.sessions.begin() as ses:
                queued = len(outbox.enqueue_unsent(ses, s, s.batch))
                queued += len(outbox.enqueue_machine_changes(ses, s, s.batch))
        except IntegrityError:  # another worker gave the same case its "filed" order first: nothing lost
            queued = 0
        with self.sessions.begin() as ses:
            claimed = outbox.claim(ses, self.name, s, now=self.now())
        states = [self._send(c, s) for c in claimed]
        return TurnReport(queued, len(claimed), states.count(outbox.DELIVERED),
                          states.count(outbox.PENDING), states.count(outbox.DEAD))

    def _send(self, c: outbox.Claimed, s: WorkOrderSettings) -> str:
        assert s.url is not None  # deliver_once sends only with a URL
        body = body_of(c.payload)
        headers = {"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": c.key,
                   "X-Streetwatch-Event": str(c.payload.get("event", "")), "X-Streetwatch-Attempt": str(c.attempt)}
        if s.secret:
            headers[SIGNATURE_HEADER] = sign(s.secret, body)
        started = time.perf_counter()
        status, excerpt, error, wait = None, None, None, None
        try:
            resp = self._http().post(s.url, content=body, headers=headers, timeout=s.timeout_s)
            status, excerpt = resp.status_code, resp.text[:500]
            if not 200 <= status < 300:
                error = f"HTTP {status}"
                wait = retry_after_s(resp.headers.get("retry-after"), self.now())
        except httpx.HTTPError as exc:  # refused, reset, timed out: the platform may or may not have it
            error = f"{exc.__class__.__name__}: {exc}"[:500]
        now = self.now()
        with self.sessions.begin() as ses:
            ses.add(WebhookDelivery(case_id=c.case_id, url=s.url, attempt=c.attempt, actor=c.actor or "outbox",
                                    payload=c.payload, status_code=status, response_excerpt=excerpt, error=error,
                                    ok=error is None, duration_ms=round((time.perf_counter() - started) * 1000, 1),
                                    at=now, work_order_id=c.id))
            if error is None:
                assert status is not None
                outbox.record_success(ses, c, status, now)
                state = outbox.DELIVERED
            else:
                delay = retry_delay_s(c.attempt, s, wait) if retryable(status) else None
                state = outbox.record_failure(ses, c, error, status, delay, s, now)
        level = logging.INFO if state == outbox.DELIVERED else logging.WARNING
        log.log(level, "work order %s (case %s, %s) attempt %s: %s", c.id, c.case_id, c.key, c.attempt,
                error or f"HTTP {status}", extra={"event": f"work_order_{state}", "work_order": c.id})
        return state

    def run(self, stop: threading.Event) -> None:
        """Turns until `stop` is set: at once while orders keep coming, else every `poll_s`. A turn that fails
        (the database down) is logged and tried again after `poll_s`."""
        try:
            while not stop.is_set():
                try:
                    report = self.deliver_once()
                except Exception:  # noqa: BLE001 - a database error of any kind must not end the worker
                    log.exception("work order delivery failed; trying again", extra={"event": "outbox_failed"})
                    report = TurnReport()
                if report.claimed == 0 and report.queued == 0 and stop.wait(self.settings.poll_s):
                    return
        finally:
            self.close()

    def start(self, stop: threading.Event) -> threading.Thread:
        """`run` on a daemon thread."""
        thread = threading.Thread(target=self.run, args=(stop,), name="sw-outbox", daemon=True)
        thread.start()
        return thread
