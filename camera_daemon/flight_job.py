"""Live drones' tracks into the case database: every few seconds, each drone camera's new posed positions are
appended to its flight (`cases.drone_tracks`), and a flight whose camera stopped is closed.

A flight is a daemon session of a drone camera, the same id that prefixes its sightings' keys, so the map can
draw the track with the cases it found. The daemon hands over every drone session it started until this job
has closed it (`forget`), so a camera stopped between two turns still has its last points written. A write
that fails (database down) keeps the points for the next turn.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

from streetwatch.camera_daemon.drone_link import DroneLink
from streetwatch.camera_daemon.writer import open_store
from streetwatch.cases.drone_tracks import add_track_points

log = logging.getLogger("streetwatch.daemon")


class FlightJob:
    """Writes `flights()` (session -> (camera id, its `DroneLink`)) on its own thread until `stop` is set;
    `forget(session)` is called once a stopped camera's flight is closed."""

    def __init__(self, flights: Callable[[], Mapping[str, tuple[str, DroneLink]]],
                 forget: Callable[[str], None], db_url: str, stop: threading.Event, every_s: float = 5.0) -> None:
        self.flights, self.forget, self.db_url, self.stop, self.every_s = flights, forget, db_url, stop, every_s
        self._store = None
        self._owed: dict[str, list] = {}  # session -> points not written yet

    def flush(self, final: bool = False) -> None:
        """Write each flight's new points; close those whose camera stopped (all of them when ``final``)."""
        for session, (camera_id, link) in sorted(self.flights().items()):
            ended = final or link.stopped  # read before taking the points: none come after a stop
            owed = self._owed.setdefault(session, [])
            owed.extend(link.take_track())
            try:
                if self._store is None:
                    self._store = open_store(self.db_url)
                add_track_points(self._store, session, camera_id, owed, ended=ended)
            except Exception as exc:  # noqa: BLE001 - the database may be down: keep the points for the next turn
                log.warning("drone track of %s not written (%s); kept for the next turn", camera_id, exc,
                            extra={"event": "flight_track_failed", "camera": camera_id})
                continue
            del self._owed[session]
            if ended:
                self.forget(session)

    def start(self) -> FlightJob:
        threading.Thread(target=self._loop, name="sw-flights", daemon=True).start()
        return self

    def _loop(self) -> None:
        while not self.stop.wait(self.every_s):
            self.flush()
        self.flush(final=True)  # a clean stop ends every flight
