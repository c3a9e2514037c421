"""The daemon's evidence retention job: `cases.expire.expire_evidence` at start, then every `every_hours`.

    retention:                       (cameras.yaml; every key optional)
      enabled: true
      every_hours: 24
      raw_days_unconfirmed: 30       cases.retention.RetentionSettings
      raw_days_confirmed: 365
      redacted_days: null

One thread, waiting on the daemon's stop event between runs. It reads its section from the daemon's
current configuration each turn, so a reload (SIGHUP) changes the days, the period or `enabled` from the
next turn on. A run that fails (the database down) is logged and tried again within the hour. Each run
logs one line (`streetwatch.retention`: files deleted per reason, entries marked, cases).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from pydantic import Field

from streetwatch.camera_daemon.writer import open_store
from streetwatch.cases.expire import RetentionReport, expire_evidence
from streetwatch.cases.retention import RetentionSettings
from streetwatch.detector.errors import StreetwatchError

log = logging.getLogger("streetwatch.daemon")
RETRY_S = 3600.0  # after a failed run: the database may be back sooner than the next period


class RetentionSection(RetentionSettings):
    """`retention:` in cameras.yaml: the settings, and when the daemon applies them."""

    enabled: bool = Field(True, description="delete evidence past its retention from the daemon (at start, then "
                                            "every `every_hours`); off: only `streetwatch cases expire-evidence`")
    every_hours: float = Field(24.0, ge=0.1, le=24 * 365, description="hours between retention runs")

    def settings(self) -> RetentionSettings:
        return RetentionSettings.model_validate(self.model_dump(include=set(RetentionSettings.model_fields)))


class RetentionJob:
    """Runs retention on its own thread until `stop` is set. `run_once` is the job itself (tests call it)."""

    def __init__(self, section: Callable[[], RetentionSection], db_url: str, evidence_dir: Path,
                 stop: threading.Event, actor: str) -> None:
        self.section, self.db_url, self.evidence_dir = section, db_url, Path(evidence_dir)
        self.stop, self.actor = stop, actor
        self._store = None
        self.last: RetentionReport | None = None

    def run_once(self) -> RetentionReport | None:
        """One retention run over the daemon's database and evidence folder; None when disabled or failed."""
        section = self.section()
        if not section.enabled:
            return None
        try:
            if self._store is None:
                self._store = open_store(self.db_url)
            self.last = expire_evidence(self._store, self.evidence_dir, section.settings(), actor=self.actor)
        except (StreetwatchError, OSError) as exc:
            log.warning("evidence retention did not run: %s; retrying within the hour", exc,
                        extra={"event": "retention_failed"})
            return None
        except Exception:  # noqa: BLE001 - a database error of any kind must not end the thread
            log.exception("evidence retention failed; retrying within the hour", extra={"event": "retention_failed"})
            return None
        return self.last

    def start(self) -> RetentionJob:
        threading.Thread(target=self._loop, name="sw-retention", daemon=True).start()
        return self

    def _loop(self) -> None:
        while not self.stop.is_set():
            ok = self.run_once() is not None or not self.section().enabled
            period = self.section().every_hours * 3600
            if self.stop.wait(period if ok else min(period, RETRY_S)):
                return
