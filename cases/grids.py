"""Unit grids in the case database: which grid a case lies in, assigned when it is filed and again by
`cases regrid`; what a case says about its grid when it leaves (exports, `cases show`, work orders).

A case's grid comes from, in order:
1. its own ground position (a drone's or a calibrated camera's case);
2. the grid cameras.yaml names for its camera (`grid:`): a bureau's word beats a position;
3. its camera's position (`location:` in cameras.yaml, `detect --location`): a fixed camera's case is in the
   grid its camera stands in.
A case in no grid says why (`grid_note`): no grids loaded, no position, outside all grids, or its camera's
named grid is not among the loaded ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from streetwatch.cases import tables as t
from streetwatch.cases.grid_file import Grid, GridIndex, GridSet
from streetwatch.cases.status import CaseStatus
from streetwatch.cases.tables import utcnow

__all__ = ["GRID_FIELDS", "GridCache", "RegridReport", "assign", "grid_fields", "grid_for_order", "grid_of_case",
           "grid_rows", "load_index", "regrid", "save_grids"]

GRID_FIELDS = ("grid_code", "grid_name", "grid_head", "grid_note")
NO_GRIDS = "no grids loaded"
NO_POSITION = "no position (neither the case nor its camera has one)"
OUTSIDE = "outside all grids"


def load_index(ses: Session) -> GridIndex:
    """The stored grids, indexed (empty when none were loaded)."""
    from shapely.geometry import shape

    rows = ses.scalars(select(t.GridRow)).all()
    return GridIndex(Grid(r.code, r.name, r.head, r.geometry, shape(r.geometry)) for r in rows)


class GridCache:
    """The stored grids for the filing path: rebuilt only when `cases regrid --grids` replaced them (their count
    or load time changed), so a sighting costs one small query, not a parse of every polygon."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._index: GridIndex | None = None

    def index(self, ses: Session) -> GridIndex:
        key = tuple(ses.execute(select(func.count(t.GridRow.code), func.max(t.GridRow.loaded_at))).one())
        if self._index is None or key != self._key:
            self._index, self._key = load_index(ses), key
        return self._index


def _code_for(case: t.Case, camera: t.Camera | None, index: GridIndex) -> str | None:
    if case.lat is not None and case.lon is not None:
        grid = index.grid_at(case.lat, case.lon)
        return grid.code if grid else None
    if camera is not None and camera.grid_code:
        return camera.grid_code
    if camera is not None and camera.lat is not None and camera.lon is not None:
        grid = index.grid_at(camera.lat, camera.lon)
        return grid.code if grid else None
    return None


def assign(ses: Session, case: t.Case, index: GridIndex, camera: t.Camera | None = None) -> str | None:
    """Set `case.grid_code` from its position or its camera's (module docstring); returns it. With no grids
    loaded nothing is changed: a case filed before the grids keeps NULL until `cases regrid`."""
    if not len(index):
        return case.grid_code
    if camera is None and case.camera_id and case.lat is None:
        camera = ses.get(t.Camera, case.camera_id)
    code = _code_for(case, camera, index)
    if code != case.grid_code:
        case.grid_code = code
    return code


@dataclass(frozen=True)
class RegridReport:
    grids: int
    cases: int
    changed: int
    by_grid: dict[str | None, int]  # None: in no grid
    warnings: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        inside = sum(n for code, n in self.by_grid.items() if code is not None)
        out = [f"{self.grids} grids; {self.cases} cases: {inside} in a grid, {self.by_grid.get(None, 0)} in none; "
               f"{self.changed} changed grid"]
        out += [f"  {code}: {n}" for code, n in sorted(self.by_grid.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
                if code is not None]
        return out


def save_grids(ses: Session, grids: GridSet) -> None:
    """Replace the stored grids with `grids` (the whole set: a grid the bureau removed is gone)."""
    ses.execute(delete(t.GridRow))
    now = utcnow()
    ses.add_all(t.GridRow(code=g.code, name=g.name, head=g.head, geometry=g.geometry, source=grids.source,
                          loaded_at=now) for g in grids.grids)
    ses.flush()


def regrid(ses: Session, cameras: dict[str, tuple[tuple[float, float] | None, str | None]] | None = None
           ) -> RegridReport:
    """Assign every case its grid from the stored grids (after they, or camera positions, changed). `cameras`:
    camera id -> (location, named grid) from a cameras.yaml, stored on the camera rows first."""
    warnings: list[str] = []
    index = load_index(ses)
    for camera_id, (location, grid) in (cameras or {}).items():
        row = ses.get(t.Camera, camera_id)
        if row is None:  # a camera whose row was never made (a test, an old database): made as ensure_camera would
            row = t.Camera(id=camera_id, name=camera_id)
            ses.add(row)
        if location is not None:
            row.lat, row.lon = location
        row.grid_code = grid
    ses.flush()
    cams = {c.id: c for c in ses.scalars(select(t.Camera))}
    for cam in cams.values():
        if cam.grid_code and cam.grid_code not in index.by_code:
            warnings.append(f"camera {cam.id}: grid {cam.grid_code!r} is not among the {len(index)} loaded grids")
    by_grid: dict[str | None, int] = {}
    changed = total = 0
    for case in ses.scalars(select(t.Case).where(t.Case.status != CaseStatus.MERGED)):
        before = case.grid_code
        code = _code_for(case, cams.get(case.camera_id or ""), index) if len(index) else None
        if code != before:
            # a plain UPDATE: re-assigning a grid is not an edit a reviewer's open page should collide with
            ses.execute(update(t.Case).where(t.Case.id == case.id).values(grid_code=code)
                        .execution_options(synchronize_session=False))
            changed += 1
        by_grid[code] = by_grid.get(code, 0) + 1
        total += 1
    return RegridReport(len(index), total, changed, by_grid, tuple(warnings))


def _note(case_lat, camera: t.Camera | None, code: str | None, known: dict[str, t.GridRow]) -> str | None:
    if code is not None:
        return None if code in known else f"grid {code} is not among the loaded grids"
    if not known:
        return NO_GRIDS
    if case_lat is None and (camera is None or (camera.lat is None and not camera.grid_code)):
        return NO_POSITION
    return OUTSIDE


def grid_rows(ses: Session) -> dict[str, t.GridRow]:
    return {g.code: g for g in ses.scalars(select(t.GridRow))}


def grid_fields(ses: Session, cases: Iterable[dict]) -> None:
    """Complete case rows (dicts with grid_code, lat, camera_id) with `grid_name`, `grid_head` and `grid_note`
    (why a case is in no grid), in place: what exports and the review app show."""
    rows = list(cases)
    known = grid_rows(ses)
    cams = {c.id: c for c in ses.scalars(select(t.Camera).where(t.Camera.id.in_({r.get("camera_id") for r in rows})))}
    for row in rows:
        code = row.get("grid_code")
        grid = known.get(code) if code else None
        row.update(grid_code=code, grid_name=grid.name if grid else None, grid_head=grid.head if grid else None,
                   grid_note=_note(row.get("lat"), cams.get(row.get("camera_id") or ""), code, known))


def grid_of_case(ses: Session, case: t.Case) -> dict:
    """{grid_code, grid_name, grid_head, grid_note} of one case (for a work order's `grid`; exports use
    `grid_fields`). `grid_note` is None when the case is in a grid, else why it is in none."""
    row = {"grid_code": case.grid_code, "lat": case.lat, "camera_id": case.camera_id}
    grid_fields(ses, [row])
    return {k: row[k] for k in GRID_FIELDS}


def grid_for_order(ses: Session, case: t.Case) -> dict | None:
    """A work order's `grid`: None while no grids are loaded; else {code, name, head, note}, where a case in no
    grid has code None and `note` says why (outside all grids, no position)."""
    if not ses.scalar(select(func.count(t.GridRow.code))):
        return None
    g = grid_of_case(ses, case)
    return {"code": g["grid_code"], "name": g["grid_name"], "head": g["grid_head"], "note": g["grid_note"]}
