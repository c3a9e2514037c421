"""The daemon's work-order delivery (`cases.delivery.OutboxWorker`) on its own thread.

    work_orders:                     (cameras.yaml; cases.work_orders.WorkOrderSettings)
      url: https://platform.example/api/events
      secret: ${PLATFORM_KEY}
      send: confirmed                confirmed | all | off

The worker reads the section from the daemon's current configuration each turn, so a reload (SIGHUP)
turns delivery on or off or changes the platform from the next turn on. Without a url it only waits.
The database is opened when first needed and again after a failure, as the retention job does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from streetwatch.camera_daemon.writer import open_store
from streetwatch.cases.delivery import OutboxWorker
from streetwatch.cases.work_orders import WorkOrderSettings
from streetwatch.detector.errors import StreetwatchError

log = logging.getLogger("streetwatch.daemon")
RETRY_S = 30.0  # the database was unreachable: try to open it again after this


class OutboxJob:
    """Delivers work orders until `stop` is set, while `section().url` is set."""

    def __init__(self, section: Callable[[], WorkOrderSettings], db_url: str, stop: threading.Event) -> None:
        self.section, self.db_url, self.stop = section, db_url, stop

    def start(self) -> OutboxJob:
        threading.Thread(target=self._loop, name="sw-outbox", daemon=True).start()
        return self

    def _loop(self) -> None:
        while not self.stop.is_set():
            if not self.section().enabled:
                if self.stop.wait(self.section().poll_s):
                    return
                continue
            try:
                store = open_store(self.db_url)
            except StreetwatchError as exc:
                log.warning("work orders wait for the database: %s", exc, extra={"event": "outbox_failed"})
                if self.stop.wait(RETRY_S):
                    return
                continue
            OutboxWorker(store.sessions, self.section).run(self.stop)  # returns once stop is set
