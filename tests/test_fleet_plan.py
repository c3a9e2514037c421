"""The fleet's assignment (camera_daemon.fleet_plan): capacity-weighted, stable, the same on every host. No database."""

from __future__ import annotations

from collections import Counter

import pytest

from streetwatch.camera_daemon.fleet_plan import HostView, moves_for, plan_owners, quotas, settled_hosts

CAMERAS = [f"cam-{i:02d}" for i in range(41)]


def load(plan: dict) -> Counter:
    return Counter(h for h in plan.values() if h)


def converge(cameras, capacities, owners=None):
    """Plan, let every host make its moves (releases first, then claims), until nothing moves; the final owners
    and how many cameras changed host on the way."""
    owners = dict(owners or {})
    moved = 0
    for _ in range(10):
        plan = plan_owners(cameras, capacities, owners)
        changed = False
        for host in capacities:
            held = {c for c, o in owners.items() if o == host}
            moves = moves_for(host, plan, owners, held)
            for cam in moves.release:
                owners[cam] = None
                changed = True
            for cam in moves_for(host, plan, owners, held - set(moves.release)).claim:
                if owners.get(cam) is None:
                    moved += cam in owners  # a camera that had an owner before
                    owners[cam] = host
                    changed = True
        if not changed:
            return owners, moved
    raise AssertionError("the plan did not converge")


def test_quotas_follow_capacity_and_never_pass_it() -> None:
    assert quotas(9, {"a": 8, "b": 8, "c": 16}) == {"a": 2, "b": 2, "c": 5}
    assert quotas(9, {"a": 8, "b": 8, "c": 8}) == {"a": 3, "b": 3, "c": 3}
    assert quotas(41, {"a": 8, "b": 16}) == {"a": 8, "b": 16}  # more cameras than capacity: both full
    assert quotas(10, {"a": 0, "b": 4}) == {"a": 0, "b": 4}
    for n in range(0, 60):
        q = quotas(n, {"a": 8, "b": 16, "c": 12, "d": 1})
        assert sum(q.values()) == min(n, 37)
        assert q["a"] <= 8 and q["b"] <= 16 and q["c"] <= 12 and q["d"] <= 1


def test_every_camera_gets_one_host_by_capacity_and_every_host_computes_the_same_plan() -> None:
    caps = {"host-a": 8, "host-b": 16, "host-c": 16}
    cameras = CAMERAS[:36]
    plan = plan_owners(cameras, caps, {})
    assert all(plan[c] in caps for c in cameras)
    assert load(plan) == Counter({"host-a": 7, "host-b": 15, "host-c": 14})  # 36 x 8/40, 16/40, 16/40
    assert plan == plan_owners(list(reversed(cameras)), dict(reversed(caps.items())), {})  # order-free


def test_a_full_fleet_leaves_the_rest_unassigned() -> None:
    plan = plan_owners(CAMERAS, {"a": 8, "b": 8}, {})
    assert load(plan) == Counter({"a": 8, "b": 8})
    assert sum(1 for h in plan.values() if h is None) == len(CAMERAS) - 16


def test_a_host_leaving_moves_only_its_cameras_and_coming_back_takes_the_same_share() -> None:
    caps = {"a": 16, "b": 16, "c": 16}
    owners, _ = converge(CAMERAS, caps)
    before = dict(owners)
    # c dies: its leases expire (owner None); a and b take exactly c's cameras, nothing else moves
    survivors = {"a": 16, "b": 16}
    orphaned = {c: (o if o != "c" else None) for c, o in owners.items()}
    after, _ = converge(CAMERAS, survivors, orphaned)
    assert {c for c in CAMERAS if after[c] != before[c]} == {c for c in CAMERAS if before[c] == "c"}
    assert max(load(after).values()) - min(load(after).values()) <= 1
    # c comes back: it gets its share again, taken only from hosts over their new quota; then nothing moves
    back, moved = converge(CAMERAS, caps, after)
    assert sorted(load(back).values()) == [13, 14, 14]
    assert moved <= 14  # no camera moves more than once, none between a and b
    assert not any(back[c] not in (after[c], "c") for c in CAMERAS)
    again, moved_again = converge(CAMERAS, caps, back)
    assert again == back and moved_again == 0  # stable: no flapping


def test_a_new_host_takes_cameras_only_from_hosts_over_quota() -> None:
    owners, _ = converge(CAMERAS[:9], {"a": 8, "b": 8})
    after, moved = converge(CAMERAS[:9], {"a": 8, "b": 8, "c": 8}, owners)
    assert sorted(load(after).values()) == [3, 3, 3]
    assert moved == 3  # exactly the new host's share
    assert all(after[c] in (owners[c], "c") for c in CAMERAS[:9])


def test_moves_release_what_is_due_elsewhere_and_claim_only_free_cameras() -> None:
    plan = {"x": "a", "y": "b", "z": "a"}
    owners = {"x": None, "y": "a", "z": "b"}
    m = moves_for("a", plan, owners, held={"y"})
    assert m.release == ["y"]  # due to b: handed over
    assert m.claim == ["x"]  # z is still b's: a waits for b to release it
    assert moves_for("a", {}, {}, held={"gone"}).release == ["gone"]  # removed from the list


@pytest.mark.parametrize("alive_for", [0.0, 3.0])
def test_only_settled_hosts_count_unless_none_has_settled(alive_for: float) -> None:
    hosts = {"old": HostView(8, 60.0), "new": HostView(8, alive_for)}
    assert settled_hosts(hosts, 10.0) == {"old": 8}
    assert settled_hosts({"new": HostView(8, alive_for)}, 10.0) == {"new": 8}  # a fleet starting up
