"""The daemon's fleet thread: which cameras this host analyses when several hosts share one camera list.

Every `lease_ttl_s / 4` seconds, on its own thread:

    1. heartbeat (capacity) and renew the leases held, in one transaction (`cases.leases`)
    2. read the fleet (live hosts, leases) and plan (`fleet_plan.plan_owners`: capacity-weighted, stable)
    3. stop the cameras due to another host, THEN release their leases; claim the free cameras due here
    4. hand the held set to the daemon (`on_held`), which starts and stops cameras the way a reload does

Fencing. A host counts its leases as valid until `renew_sent + ttl - margin` on its own monotonic (boot) clock;
the database dates the same lease `now() + ttl` with `now()` no earlier than that send, and another host claims
it only after that. Past the local deadline (database unreachable, renewals hanging, the process stopped and
resumed) `fenced()` is true: the daemon's scheduler and model skip every camera at once, before anyone else
can have claimed them, and the next turn of this thread stops them. The two clocks only need to run at the same
rate; `margin` (ttl/5, at least 0.5 s) covers rate error and a model batch already running.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from sqlalchemy import create_engine

from streetwatch.camera_daemon.config_fields import FleetSettings
from streetwatch.camera_daemon.fleet_plan import HostView, moves_for, plan_owners, settled_hosts
from streetwatch.camera_daemon.metrics import DaemonMetrics
from streetwatch.cases import leases

__all__ = ["FleetJob", "fence_clock"]

log = logging.getLogger("streetwatch.daemon")


def fence_clock() -> float:
    """Seconds on a clock that never jumps and keeps counting while the machine sleeps (CLOCK_BOOTTIME where
    there is one): a host suspended past its lease must find it expired."""
    return time.clock_gettime(time.CLOCK_BOOTTIME) if hasattr(time, "CLOCK_BOOTTIME") else time.monotonic()


class FleetJob:
    """Holds this host's camera leases on its own thread until `stop` is set; `leave()` after the cameras stopped.

    Args:
        settings: the `fleet:` section.
        db_url: the fleet's PostgreSQL.
        cameras: the camera ids of the list (read afresh every turn: a reload applies).
        on_held: called with the camera ids this host holds now, after every turn; starts and stops cameras.
        instance: this daemon process (its actor), to tell two daemons under one host name apart.
    """

    def __init__(self, settings: FleetSettings, db_url: str, cameras: Callable[[], Sequence[str]],
                 on_held: Callable[[set[str]], None], stop: threading.Event, metrics: DaemonMetrics,
                 instance: str) -> None:
        self.settings, self.db_url, self.cameras, self.on_held = settings, db_url, cameras, on_held
        self.stop, self.metrics, self.instance = stop, metrics, instance
        self.host = settings.host
        self.held: dict[str, int] = {}  # camera -> fencing token
        self.fence_until = float("-inf")
        self.db_ok = False
        self.last_error: str | None = None
        self.plan: dict[str, str | None] = {}
        self._engine = None
        self._thread = threading.Thread(target=self._loop, name="sw-fleet", daemon=True)

    # ---- what the daemon reads ------------------------------------------------------------------

    def fenced(self) -> bool:
        """True when this host can no longer prove it holds its cameras: analyse nothing."""
        return fence_clock() >= self.fence_until

    def holds(self, camera_id: str) -> bool:
        """True while this host may analyse `camera_id`: not fenced, and its lease among those just renewed.
        Checked per frame: a host resumed after its leases expired renews the ones still its own and is no
        longer fenced a moment before the daemon has stopped the cameras it lost; those must not run meanwhile."""
        return camera_id in self.held and not self.fenced()

    def describe(self) -> dict:
        """The host's entry in /status."""
        left = self.fence_until - fence_clock()
        return {"host": self.host, "capacity": self.settings.capacity, "lease_ttl_s": self.settings.lease_ttl_s,
                "database_up": self.db_ok, "fenced": left <= 0,
                "lease_valid_for_s": round(max(0.0, left), 2),
                "held": dict(sorted(self.held.items())), "last_error": self.last_error,
                "plan": {h: sorted(c for c, o in self.plan.items() if o == h)
                         for h in sorted({o for o in self.plan.values() if o})}}

    # ---- thread ---------------------------------------------------------------------------------

    def start(self) -> FleetJob:
        self._thread.start()
        return self

    def join(self, timeout_s: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        while True:
            try:
                self.turn()
            except Exception:  # noqa: BLE001 - the fleet thread must outlive any one bad turn
                log.exception("fleet: unexpected error", extra={"event": "fleet_error"})
            if self.stop.wait(self.settings.tick_s):
                return

    def _connection(self):
        if self._engine is None:
            ttl = self.settings.lease_ttl_s
            # A partition that drops packets must end a renewal in about a ttl, not after the kernel's default
            # keep-alive (hours): probes on idle connections, a bound on unacknowledged data, and a bound on
            # the statement in the server (a lock wait). Whatever still hangs is covered by the fence.
            self._engine = create_engine(self.db_url, pool_pre_ping=True, connect_args={
                "keepalives": 1, "keepalives_idle": max(1, int(ttl / 4)), "keepalives_interval": 1,
                "keepalives_count": 2, "tcp_user_timeout": int(ttl * 1000),
                "options": f"-c statement_timeout={int(ttl * 1000)}"})
        return self._engine.begin()

    def turn(self) -> None:
        """One heartbeat, renewal, plan and set of moves; then the held set goes to the daemon."""
        s = self.settings
        sent = fence_clock()
        try:
            with self._connection() as conn:
                other = leases.heartbeat(conn, self.host, self.instance, s.capacity, s.lease_ttl_s)
                leases.ensure_leases(conn, self.cameras())
                # two daemons under one name would renew each other's leases: hold nothing until the other is gone
                # (a restart after a crash waits here for the dead instance's heartbeat to age past the ttl)
                renewed = {} if other else leases.renew(conn, self.host, self.held, s.lease_ttl_s)
            if other:
                log.error("fleet: another daemon (%s) heartbeats as host %r; this one holds no camera until it has "
                          "been silent for lease_ttl_s: give each daemon its own fleet.host", other, self.host,
                          extra={"event": "fleet_conflict"})
                self._keep({}, "another daemon uses the same fleet.host")
                self.db_ok, self.last_error = True, f"fleet.host {self.host!r} used by {other}"
                self._publish()
                return
            self._keep(renewed, "taken by another host while this one was silent")
            self.fence_until = sent + s.lease_ttl_s - s.fence_margin_s
            self._move()
            if not self.db_ok:
                log.info("fleet: database reachable; holding %d cameras", len(self.held), extra={"event": "fleet_up"})
            self.db_ok, self.last_error = True, None
        except Exception as exc:  # noqa: BLE001 - the database may be gone: the fence decides what still runs
            line = f"{type(exc).__name__}: {str(getattr(exc, 'orig', exc)).splitlines()[0] if str(exc) else ''}"
            if self.db_ok or self.last_error is None:
                log.warning("fleet: leases not renewed (%s); cameras stop in %.1f s unless the database answers",
                            line, max(0.0, self.fence_until - fence_clock()), extra={"event": "fleet_db_down"})
            self.db_ok, self.last_error = False, line
            if self._engine is not None:
                self._engine.dispose()  # a dead connection must not be reused
        if self.fenced() and self.held:
            self._keep({}, "fenced: leases could not be renewed in time")
        self._publish()

    def _move(self) -> None:
        s = self.settings
        with self._connection() as conn:
            view = leases.fleet_view(conn)
        # the renewal may be older than this view (a hung connection that answered late): a lease whose token
        # moved on meanwhile is lost, never "released" by this host
        still = {r.camera_id: r.token for r in view.leases
                 if r.host == self.host and self.held.get(r.camera_id) == r.token}
        if len(still) < len(self.held):
            self._keep(still, "taken by another host while this one was silent")
            self.on_held(set(self.held))
        hosts = {h.host: HostView(h.capacity, h.alive_for_s) for h in view.live_hosts(s.lease_ttl_s)}
        owners = view.owners()
        cameras = list(self.cameras())
        self.plan = plan_owners(cameras, settled_hosts(hosts, s.settle_after_s), owners)
        moves = moves_for(self.host, self.plan, owners, set(self.held))
        if moves.release:
            # stop analysing first, release after: the next owner never starts while this host still runs them
            kept = {c: t for c, t in self.held.items() if c not in moves.release}
            self.on_held(set(kept))
            with self._connection() as conn:
                for cam in moves.release:
                    leases.release(conn, self.host, cam, self.held[cam])
            self.held = kept
            self.metrics.fleet_moves.inc(len(moves.release), event="released")
            log.info("fleet: released %s to %s", moves.release, {c: self.plan.get(c) for c in moves.release},
                     extra={"event": "fleet_released", "cameras": moves.release})
        won: dict[str, int] = {}
        if moves.claim and len(self.held) < s.capacity:
            with self._connection() as conn:
                for cam in moves.claim[:s.capacity - len(self.held)]:
                    token = leases.claim(conn, self.host, cam, s.lease_ttl_s)
                    if token is not None:
                        won[cam] = token
            self.held.update(won)  # only once committed: a claim rolled back must never start a camera
        claimed = sorted(won)
        if claimed:
            self.metrics.fleet_moves.inc(len(claimed), event="claimed")
            log.info("fleet: claimed %s", claimed, extra={"event": "fleet_claimed", "cameras": claimed,
                                                          "tokens": {c: self.held[c] for c in claimed}})

    def _keep(self, kept: dict[str, int], why: str) -> None:
        """Hold only `kept` (camera -> token); every other camera held is lost, for `why` (counted, logged)."""
        lost = sorted(set(self.held) - set(kept))
        if lost:
            self.metrics.fleet_moves.inc(len(lost), event="lost")
            log.warning("fleet: stopped %s: %s", lost, why, extra={"event": "fleet_lost", "cameras": lost})
        self.held = kept

    def _publish(self) -> None:
        self.metrics.fleet_fenced.set(1 if self.fenced() else 0)
        if not self.stop.is_set():
            self.on_held(set(self.held))

    def leave(self) -> None:
        """A clean stop (the cameras already stopped): free this host's leases so others take them at once."""
        try:
            with self._connection() as conn:
                freed = leases.leave(conn, self.host, self.instance)
            log.info("fleet: left, %d cameras freed for the other hosts", freed, extra={"event": "fleet_left"})
        except Exception as exc:  # noqa: BLE001 - unreachable: the leases expire on their own after the ttl
            log.warning("fleet: leases not freed (%s); other hosts take the cameras when they expire", exc,
                        extra={"event": "fleet_leave_failed"})
        finally:
            self.held = {}
            self.fence_until = float("-inf")
            if self._engine is not None:
                self._engine.dispose()
