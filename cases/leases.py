"""Camera leases of a daemon fleet, in PostgreSQL: who analyses which camera, until when (database clock).

    camera_leases   camera_id, host, token (the fencing token: +1 on every change of owner), expires_at
    fleet_hosts     host, capacity, heartbeat_at, joined_at (reset when a host comes back after a silence)

Every time is the DATABASE's `now()`, never a host's clock, so hosts with skewed clocks agree on who holds
what. A host takes a camera only when its lease is free or expired (`claim`: one UPDATE, so two hosts racing
for it get one winner), renews the leases it holds in one statement (`renew`: only rows still carrying its host
AND its token, so a lease someone else took in between is never taken back), and hands a camera over by
releasing it (`release`). `now()` is the start of the statement's transaction: a renewal's `expires_at` is
never earlier than `ttl` after the moment the host sent it, which is what its local fence counts from
(`camera_daemon.fleet_job`).

Why leases and not session advisory locks: an advisory lock lives as long as the session, and a hung host
(SIGSTOP) keeps its TCP session open for as long as the kernel's keep-alive allows: its cameras would stay
locked for minutes. A lease expires on the database's clock whatever the holder's connection does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import BigInteger, DateTime, Integer, String, Table, func, text, tuple_, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, mapped_column

from streetwatch.cases.tables import Base

__all__ = ["CameraLease", "FleetHost", "FleetView", "HostRow", "LeaseRow", "claim", "ensure_leases", "fleet_view",
           "heartbeat", "leave", "release", "renew"]


class CameraLease(Base):
    __tablename__ = "camera_leases"
    camera_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str | None] = mapped_column(String(64))  # None: free
    token: Mapped[int] = mapped_column(BigInteger, default=0)  # +1 on every claim
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    renewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class FleetHost(Base):
    __tablename__ = "fleet_hosts"
    host: Mapped[str] = mapped_column(String(64), primary_key=True)
    instance: Mapped[str] = mapped_column(String(200), default="")  # the daemon process (host:pid:instance)
    capacity: Mapped[int] = mapped_column(Integer, default=0)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    joined_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


_TTL = "make_interval(secs => :ttl)"
_lease = cast(Table, CameraLease.__table__)  # a Table: what update() is typed to take


def heartbeat(conn: Connection, host: str, instance: str, capacity: int, ttl_s: float) -> str | None:
    """Say this host is alive with `capacity`; returns the instance of ANOTHER daemon that heartbeated under the
    same host name within `ttl_s` (a configuration mistake: two daemons would renew each other's leases), else
    None. A host silent for longer than `ttl_s` joins afresh (`joined_at` = now)."""
    other = conn.execute(text(f"SELECT instance FROM fleet_hosts WHERE host = :host AND instance <> :instance "
                              f"AND heartbeat_at > now() - {_TTL}"),
                         {"host": host, "instance": instance, "ttl": ttl_s}).scalar()
    conn.execute(text(
        "INSERT INTO fleet_hosts (host, instance, capacity, heartbeat_at, joined_at) "
        "VALUES (:host, :instance, :capacity, now(), now()) "
        "ON CONFLICT (host) DO UPDATE SET instance = excluded.instance, capacity = excluded.capacity, "
        f"heartbeat_at = now(), joined_at = CASE WHEN fleet_hosts.heartbeat_at < now() - {_TTL} "
        "OR fleet_hosts.instance <> excluded.instance THEN now() ELSE fleet_hosts.joined_at END"),
        {"host": host, "instance": instance, "capacity": capacity, "ttl": ttl_s})
    return other


def ensure_leases(conn: Connection, camera_ids: Iterable[str]) -> None:
    """A (free) lease row for every camera of the list; existing rows are left as they are."""
    rows = [{"camera_id": c} for c in sorted(set(camera_ids))]
    if rows:
        conn.execute(text("INSERT INTO camera_leases (camera_id, token) VALUES (:camera_id, 0) "
                          "ON CONFLICT (camera_id) DO NOTHING"), rows)


def renew(conn: Connection, host: str, held: Mapping[str, int], ttl_s: float) -> dict[str, int]:
    """Extend the leases this host holds with these tokens; returns those renewed (camera -> token). A lease
    missing from the answer was taken by another host (its token moved on): stop analysing that camera."""
    if not held:
        return {}
    stmt = (update(_lease)
            .where(_lease.c.host == host, tuple_(_lease.c.camera_id, _lease.c.token).in_(list(held.items())))
            .values(expires_at=func.now() + func.make_interval(0, 0, 0, 0, 0, 0, float(ttl_s)),
                    renewed_at=func.now())
            .returning(_lease.c.camera_id, _lease.c.token))
    return {cam: token for cam, token in conn.execute(stmt)}


def claim(conn: Connection, host: str, camera_id: str, ttl_s: float) -> int | None:
    """Take a free or expired lease; its new token, or None when another host holds it (it won the race)."""
    return conn.execute(text(
        f"UPDATE camera_leases SET host = :host, token = token + 1, expires_at = now() + {_TTL}, "
        "renewed_at = now(), claimed_at = now() "
        "WHERE camera_id = :camera AND (host IS NULL OR expires_at IS NULL OR expires_at <= now()) RETURNING token"),
        {"host": host, "camera": camera_id, "ttl": ttl_s}).scalar()


def release(conn: Connection, host: str, camera_id: str, token: int) -> bool:
    """Hand a camera back (free at once for the next host); False when it was no longer this host's."""
    return conn.execute(text("UPDATE camera_leases SET host = NULL, expires_at = NULL "
                             "WHERE camera_id = :camera AND host = :host AND token = :token"),
                        {"camera": camera_id, "host": host, "token": token}).rowcount == 1


def leave(conn: Connection, host: str, instance: str) -> int:
    """A clean stop: free every lease of this host and drop its heartbeat, so the others take over at once."""
    freed = conn.execute(text("UPDATE camera_leases SET host = NULL, expires_at = NULL WHERE host = :host"),
                         {"host": host}).rowcount
    conn.execute(text("DELETE FROM fleet_hosts WHERE host = :host AND instance = :instance"),
                 {"host": host, "instance": instance})
    return freed


@dataclass(frozen=True)
class LeaseRow:
    camera_id: str
    host: str | None
    token: int
    expires_in_s: float | None  # database clock; negative: expired


@dataclass(frozen=True)
class HostRow:
    host: str
    instance: str
    capacity: int
    heartbeat_age_s: float
    alive_for_s: float  # since it (re)joined


@dataclass(frozen=True)
class FleetView:
    """The fleet as the database sees it now: every host row, every lease row."""

    hosts: list[HostRow]
    leases: list[LeaseRow]

    def live_hosts(self, ttl_s: float) -> list[HostRow]:
        return [h for h in self.hosts if h.heartbeat_age_s < ttl_s]

    def owners(self) -> dict[str, str | None]:
        """camera -> the host whose lease has not expired (None: free or expired)."""
        return {r.camera_id: r.host if r.host and (r.expires_in_s or 0) > 0 else None for r in self.leases}


def fleet_view(conn: Connection) -> FleetView:
    hosts = [HostRow(*row) for row in conn.execute(text(
        "SELECT host, instance, capacity, extract(epoch FROM now() - heartbeat_at)::float8, "
        "extract(epoch FROM now() - joined_at)::float8 FROM fleet_hosts ORDER BY host"))]
    leases = [LeaseRow(*row) for row in conn.execute(text(
        "SELECT camera_id, host, token, extract(epoch FROM expires_at - now())::float8 "
        "FROM camera_leases ORDER BY camera_id"))]
    return FleetView(hosts, leases)

