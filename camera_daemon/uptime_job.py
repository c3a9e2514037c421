"""The daemon's uptime log: every `every_s` it adds the elapsed seconds to each camera's hour in the case
database (`cases.uptime`), as up when the camera's reader was live. The bureau report reads it back.

A sample says what the reader's state was at that instant, so a camera down for less than a minute between two
samples may count as up for it: the log is minute-grained, not frame-grained. A write that fails (database
down) keeps the seconds and adds them on the next turn.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

from streetwatch.camera_daemon.writer import open_store
from streetwatch.cases.uptime import add_uptime

log = logging.getLogger("streetwatch.daemon")


class UptimeJob:
    """Samples `states()` (camera id -> reader state) on its own thread until `stop` is set."""

    def __init__(self, states: Callable[[], Mapping[str, str]], db_url: str, stop: threading.Event,
                 every_s: float = 60.0) -> None:
        self.states, self.db_url, self.stop, self.every_s = states, db_url, stop, every_s
        self._store = None
        self._owed: dict[str, tuple[float, float]] = {}  # camera -> (up s, watched s) not written yet
        self._last = time.monotonic()

    def sample(self, now: float | None = None) -> None:
        """Count the time since the last sample for every camera, then write what is owed."""
        now = time.monotonic() if now is None else now
        elapsed, self._last = max(0.0, now - self._last), now
        for camera_id, state in self.states().items():
            up, watched = self._owed.get(camera_id, (0.0, 0.0))
            self._owed[camera_id] = (up + (elapsed if state == "live" else 0.0), watched + elapsed)
        try:
            if self._store is None:
                self._store = open_store(self.db_url)
            add_uptime(self._store, self._owed)
            self._owed = {}
        except Exception as exc:  # noqa: BLE001 - the database may be down: keep the seconds for the next turn
            log.warning("camera uptime not written (%s); kept for the next turn", exc, extra={"event": "uptime_failed"})

    def start(self) -> UptimeJob:
        threading.Thread(target=self._loop, name="sw-uptime", daemon=True).start()
        return self

    def _loop(self) -> None:
        while not self.stop.wait(self.every_s):
            self.sample()
        self.sample()  # the last minute before a clean stop
