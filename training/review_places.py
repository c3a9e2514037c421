"""Which reviewed cases show the same place, and which split each place goes to: pure logic, no database.

A model judged on a street it trained on looks better than it is, so `dataset from-reviews` splits by place, not by
case or frame: val and test never share a place with train. Two cases are one place when they share a camera view
(the same scene, `cam07/preset-3`; a camera without scenes is one view) or lie within `radius_m` of each other on
the ground (a drone's or photos' positions; two cameras watching one corner). Places are the connected groups of
that relation; each goes whole to train, val or test, by a hash of its name (so it stays there on the next export
unless a new case joins it to another place).
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from streetwatch.detector.geo import haversine_m

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class CasePlace:
    case_id: int
    view: str  # the scene id, else the camera id ("" when neither is known)
    lat: float | None = None
    lon: float | None = None


def place_groups(cases: Sequence[CasePlace], radius_m: float = 50.0) -> dict[int, str]:
    """case id -> its place's name (`view:<scene or camera>` or `ground:<lat>,<lon>` of one member, the smallest).

    Example:
        >>> place_groups([CasePlace(1, "cam7/preset-1"), CasePlace(2, "cam7/preset-1"), CasePlace(3, "cam9")])
        {1: 'view:cam7/preset-1', 2: 'view:cam7/preset-1', 3: 'view:cam9'}
    """
    parent = {c.case_id: c.case_id for c in cases}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(a: int, b: int) -> None:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    by_view: dict[str, int] = {}
    for c in cases:
        if c.view:
            join(c.case_id, by_view.setdefault(c.view, c.case_id))
    # positions: only cases in the same or a neighbouring cell (one radius wide) can be within the radius
    cell_deg = max(radius_m, 1.0) / 111_000
    cells: dict[tuple[int, int], list[CasePlace]] = {}
    for c in cases:
        if c.lat is None or c.lon is None or radius_m <= 0:
            continue
        cell = (math.floor(c.lat / cell_deg), math.floor(c.lon / (cell_deg / max(0.01, math.cos(math.radians(c.lat))))))
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                for other in cells.get((cell[0] + dy, cell[1] + dx), []):
                    if float(haversine_m(c.lat, c.lon, other.lat, other.lon)) <= radius_m:
                        join(c.case_id, other.case_id)
        cells.setdefault(cell, []).append(c)
    names: dict[int, str] = {}
    for c in cases:
        name = f"view:{c.view}" if c.view else (f"ground:{c.lat:.5f},{c.lon:.5f}" if c.lat is not None
                                                 and c.lon is not None else f"case:{c.case_id}")
        r = root(c.case_id)
        names[r] = min(names.get(r, name), name)
    return {c.case_id: names[root(c.case_id)] for c in cases}


def unit_hash(seed: int, name: str) -> float:
    digest = hashlib.sha256(f"{seed}:place:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_splits(places: Sequence[str], val_fraction: float, test_fraction: float, seed: int = 0) -> dict[str, str]:
    """place -> train | val | test by a hash of its name; with enough places every split asked for gets one
    (two places: train and val; three: all three), taken from the split that holds the most.

    Example:
        >>> sorted(assign_splits(["view:a", "view:b", "view:c"], 0.2, 0.2).values())
        ['test', 'train', 'val']
    """
    names = sorted(set(places))
    u = {p: unit_hash(seed, p) for p in names}
    split = {p: "test" if u[p] < test_fraction else "val" if u[p] < test_fraction + val_fraction else "train"
             for p in names}
    need = ["train"]
    if len(names) >= 2 and val_fraction > 0:
        need.append("val")
    if len(names) >= 3 and test_fraction > 0:
        need.append("test")
    for wanted in need:
        if wanted in split.values():
            continue
        counts = Counter(split.values())
        donors = [s for s in counts if counts[s] >= 2 or s not in need]
        donor = max(donors, key=lambda s: (counts[s], s))
        split[min((p for p in names if split[p] == donor), key=lambda p: u[p])] = wanted
    return split
