"""Which host of a camera fleet should analyse which camera: pure, no database, no clock.

Every host computes the same plan from the same view (the live hosts with their capacities, the cameras, who
holds each camera now), so hosts agree without talking to each other; the database's leases then make sure
that at most one of them holds a camera at any instant, whatever the views (`cases.leases`).

    quotas        cameras per host: in proportion to capacity, never above it (largest remainder, ties by name)
    plan_owners   camera -> host: current owners keep their cameras up to their quota (nothing moves without
                  cause); the rest go, camera by camera, to the host ranked first by rendezvous hashing that
                  still has room (so a host joining or leaving moves only its share, and the same cameras
                  return to it)

Flapping is prevented by what the plan is a function of: the host set changes only when a host joins (after
it has heartbeated for `settle_s`, see `settled_hosts`) or leaves (no heartbeat for a lease's TTL); between
such events the plan is stable and every host converges on it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["HostView", "Moves", "moves_for", "plan_owners", "quotas", "rendezvous_score", "settled_hosts"]


@dataclass(frozen=True)
class HostView:
    """A live host as the fleet table shows it: its declared capacity and how long it has been heartbeating."""

    capacity: int
    alive_for_s: float


def settled_hosts(hosts: Mapping[str, HostView], settle_s: float) -> dict[str, int]:
    """Hosts that count for the plan, by capacity: those heartbeating for `settle_s` at least (a host that
    comes and goes moves nothing), or every live host while none has settled yet (a fleet starting up)."""
    settled = {h: v.capacity for h, v in hosts.items() if v.alive_for_s >= settle_s and v.capacity > 0}
    return settled or {h: v.capacity for h, v in hosts.items() if v.capacity > 0}


def quotas(n_cameras: int, capacities: Mapping[str, int]) -> dict[str, int]:
    """How many of `n_cameras` each host should hold: proportional to capacity, at most its capacity.

    Largest remainder, ties broken by host name, so every host computes the same numbers. More cameras than
    the fleet's total capacity: every host is full and the rest stay unassigned.

    Example:
        >>> quotas(9, {"a": 8, "b": 8, "c": 16})
        {'a': 2, 'b': 2, 'c': 5}
    """
    total = sum(max(0, c) for c in capacities.values())
    if total == 0:
        return {h: 0 for h in capacities}
    if n_cameras >= total:
        return {h: max(0, c) for h, c in capacities.items()}
    # n < total, so each exact share n*c/total < c: rounding up never passes a host's capacity
    exact = {h: n_cameras * max(0, c) / total for h, c in capacities.items()}
    out = {h: int(share) for h, share in exact.items()}
    left = n_cameras - sum(out.values())
    for h in sorted(exact, key=lambda h: (-(exact[h] - out[h]), h))[:left]:
        out[h] += 1
    return out


def rendezvous_score(camera: str, host: str) -> int:
    """A stable pseudo-random score of (camera, host); a camera prefers hosts in descending score."""
    return int.from_bytes(hashlib.blake2b(f"{camera}\0{host}".encode(), digest_size=8).digest(), "big")


def plan_owners(cameras: Sequence[str], capacities: Mapping[str, int],
                owners: Mapping[str, str | None]) -> dict[str, str | None]:
    """camera -> the host that should hold it (None: the fleet is full).

    Args:
        cameras: every camera of the fleet.
        capacities: the hosts that count (`settled_hosts`) and their capacities.
        owners: camera -> its current live owner (absent or None: nobody holds it now).
    """
    cams = sorted(set(cameras))
    quota = quotas(len(cams), capacities)
    load = dict.fromkeys(quota, 0)
    plan: dict[str, str | None] = dict.fromkeys(cams)
    # 1. owners keep what they hold, up to their quota; an owner over quota keeps its best-ranked cameras
    held: dict[str, list[str]] = {}
    for cam in cams:
        owner = owners.get(cam)
        if owner in quota:
            held.setdefault(owner, []).append(cam)
    for owner, owned in held.items():
        for cam in sorted(owned, key=lambda c: -rendezvous_score(c, owner))[:quota[owner]]:
            plan[cam] = owner
            load[owner] += 1
    # 2. the rest: each to its highest-ranked host with room left
    for cam in cams:
        if plan[cam] is not None:
            continue
        for host in sorted(quota, key=lambda h: (-rendezvous_score(cam, h), h)):
            if load[host] < quota[host]:
                plan[cam] = host
                load[host] += 1
                break
    return plan


@dataclass(frozen=True)
class Moves:
    """What one host does with the plan: claim cameras due to it that nobody holds, release those due to another."""

    claim: list[str]
    release: list[str]


def moves_for(me: str, plan: Mapping[str, str | None], owners: Mapping[str, str | None],
              held: set[str]) -> Moves:
    """This host's moves. A camera held here but no longer in the plan (removed from the list) is released too;
    a camera due here but still held by another live host waits until that host releases it (graceful handover)."""
    claim = sorted(c for c, h in plan.items() if h == me and owners.get(c) is None and c not in held)
    release = sorted(c for c in held if plan.get(c) != me)
    return Moves(claim, release)
