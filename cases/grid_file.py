"""A bureau's unit grids (单元网格): read from GeoJSON, checked, and queried by point. No database here.

A grids file is an RFC 7946 FeatureCollection of Polygon / MultiPolygon features in WGS84 lon/lat (CGCS2000,
EPSG:4490, differs from it by centimetres and is taken as it is), one feature per grid:

    {"type": "Feature", "properties": {"code": "110105001001001", "name": "麦子店 1", "head": "王五 / 第一组"},
     "geometry": {"type": "Polygon", "coordinates": [[[116.46, 39.95], ...]]}}

`code` is required and unique; `name` and `head` (the grid head: person or team) are warned about when missing.
GB/T 47678.3 codes have 15 characters (a secondary source; unverified against the official text): another length
is a warning, never an error, since a bureau's platform is what decides. Every problem that stops the file names
the file, the feature's index and the field, on one line each, before anything is stored.

Shapefiles are not read here (no reader is installed with streetwatch): `ogr2ogr -f GeoJSON -t_srs EPSG:4326
grids.geojson grids.shp` converts one (docs/grids.md).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import shapely
from shapely import STRtree
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from streetwatch.detector.errors import ConfigError

__all__ = ["GRID_CODE_MAX_LEN", "Grid", "GridIndex", "GridSet", "overlap_warnings", "parse_grids", "read_grids"]

GRID_CODE_MAX_LEN = 64  # the column's width; a GB/T 47678.3 code has 15
GRID_NAME_MAX_LEN = 200
STANDARD_CODE = re.compile(r"^[0-9A-Za-z]{15}$")
MAX_BYTES = 64 * 1024 * 1024  # 91 detailed grids are a few MB; a city's parcels would be the wrong file
MAX_ERRORS = 20
# property names a bureau's export may use for each field (the first present wins)
ALIASES = {"code": ("code", "grid_code", "网格编码", "网格代码", "BGCODE"),
           "name": ("name", "grid_name", "网格名称"),
           "head": ("head", "grid_head", "网格长", "责任人", "responsible")}
WGS84_NAMES = ("crs84", "4326", "4490")  # RFC 7946's default, WGS84, CGCS2000
MIN_OVERLAP_M2 = 1.0  # below this an overlap is a digitising sliver along a shared edge, not two grids


@dataclass(frozen=True)
class Grid:
    code: str
    name: str
    head: str
    geometry: dict  # the feature's GeoJSON geometry, as given (drawn on the review map)
    shape: BaseGeometry = field(compare=False, repr=False)


@dataclass(frozen=True)
class GridSet:
    grids: tuple[Grid, ...]
    warnings: tuple[str, ...] = ()
    source: str = ""


def _prop(props: dict, key: str) -> tuple[str | None, object]:
    for name in ALIASES[key]:
        if props.get(name) not in (None, ""):
            return name, props[name]
    return None, None


def _crs_error(doc: dict, where: str) -> str | None:
    crs = doc.get("crs")
    if crs is None:
        return None
    name = str(((crs or {}).get("properties") or {}).get("name", "")) if isinstance(crs, dict) else ""
    if any(n in name.lower().replace(":", "") for n in WGS84_NAMES):
        return None
    return (f"{where}: crs: {name or json.dumps(crs)} is not WGS84 lon/lat; convert it: "
            "ogr2ogr -f GeoJSON -t_srs EPSG:4326 out.geojson in.geojson")


def _geometry(geom: object, where: str) -> tuple[BaseGeometry | None, str | None]:
    if not isinstance(geom, dict) or geom.get("type") not in ("Polygon", "MultiPolygon"):
        kind = geom.get("type") if isinstance(geom, dict) else type(geom).__name__
        return None, f"{where}: geometry: a Polygon or MultiPolygon is required, got {kind}"
    try:
        poly = shape(geom)
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        return None, f"{where}: geometry: malformed coordinates ({exc})"
    if poly.is_empty:
        return None, f"{where}: geometry: empty polygon"
    x0, y0, x1, y1 = poly.bounds
    if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        return None, (f"{where}: geometry: coordinates ({x0:.6g}, {y0:.6g}) lie outside lon/lat degrees: a "
                      "projected file? convert it: ogr2ogr -f GeoJSON -t_srs EPSG:4326 out.geojson in.shp")
    if not poly.is_valid:
        return None, f"{where}: geometry: invalid polygon ({explain_validity(poly)})"
    return poly, None


def parse_grids(doc: object, source: str = "grids") -> GridSet:
    """The grids of a parsed GeoJSON document; ConfigError listing every problem (one line each, at most 20)."""
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        raise ConfigError(f"{source}: a GeoJSON FeatureCollection is required (type and features)")
    errors: list[str] = []
    if (crs := _crs_error(doc, source)) is not None:
        raise ConfigError(crs)
    warnings: list[str] = []
    grids: list[Grid] = []
    seen: dict[str, int] = {}
    for i, feature in enumerate(doc["features"]):
        where = f"{source}: feature {i}"
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            errors.append(f"{where}: not a GeoJSON Feature")
            continue
        props = feature.get("properties") or {}
        if not isinstance(props, dict):
            errors.append(f"{where}: properties: an object is required")
            continue
        key, raw = _prop(props, "code")
        code = str(raw).strip() if raw is not None else ""
        if not code:
            errors.append(f"{where}: code: missing (property {' / '.join(ALIASES['code'][:3])})")
        elif len(code) > GRID_CODE_MAX_LEN:
            errors.append(f"{where}: {key}: {code[:20]!r}... longer than {GRID_CODE_MAX_LEN} characters")
        elif code in seen:
            errors.append(f"{where}: {key}: {code!r} already names feature {seen[code]}")
        else:
            seen[code] = i
            if not STANDARD_CODE.match(code):
                warnings.append(f"{where}: {key}: {code!r} is not 15 letters or digits (GB/T 47678.3 unit-grid "
                                "code, per a secondary source); kept as given")
        texts = {}
        for name in ("name", "head"):
            k, value = _prop(props, name)
            texts[name] = "" if value is None else str(value).strip()[:GRID_NAME_MAX_LEN]
            if not texts[name]:
                warnings.append(f"{where} ({code or '?'}): {name}: missing"
                                + (" (no grid head: its cases name no one responsible)" if name == "head" else ""))
        poly, problem = _geometry(feature.get("geometry"), where)
        if problem:
            errors.append(problem)
        if poly is not None and code and not errors:
            grids.append(Grid(code, texts["name"], texts["head"], feature["geometry"], poly))
        if len(errors) >= MAX_ERRORS:
            errors.append(f"{source}: stopped after {MAX_ERRORS} problems")
            break
    if errors:
        raise ConfigError("\n".join(errors))
    if not grids:
        raise ConfigError(f"{source}: no grids (the FeatureCollection has no features)")
    return GridSet(tuple(grids), tuple(warnings + overlap_warnings(grids)), source)


def read_grids(path: Path) -> GridSet:
    """A grids file (GeoJSON), checked: ConfigError naming the file (and feature, field) for each problem."""
    path = Path(path)
    if path.suffix.lower() in (".shp", ".shx", ".dbf", ".zip"):
        raise ConfigError(f"{path}: Shapefiles are not read directly; convert it first: "
                          f"ogr2ogr -f GeoJSON -t_srs EPSG:4326 {path.with_suffix('.geojson').name} {path.name}")
    try:
        if path.stat().st_size > MAX_BYTES:
            raise ConfigError(f"{path}: larger than {MAX_BYTES // 2**20} MB: not a grids file?")
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not GeoJSON ({exc})") from None
    return parse_grids(doc, str(path))


def _area_m2(geom: BaseGeometry) -> float:
    """Approximate area in square metres of a small lon/lat shape (equirectangular at its latitude)."""
    lat = geom.centroid.y if not geom.is_empty else 0.0
    return geom.area * 111_320.0**2 * math.cos(math.radians(lat))


def overlap_warnings(grids: Iterable[Grid]) -> list[str]:
    """One line per pair of grids that overlap by more than a sliver: a case there lies in both (it is given
    the one with the lower code)."""
    grids = list(grids)
    tree = STRtree([g.shape for g in grids])
    out = []
    for i, grid in enumerate(grids):
        for j in sorted(int(k) for k in tree.query(grid.shape, predicate="intersects")):
            if j <= i:
                continue
            m2 = _area_m2(shapely.intersection(grid.shape, grids[j].shape))
            if m2 >= MIN_OVERLAP_M2:
                out.append(f"grids {grid.code} and {grids[j].code} overlap (about {m2:,.0f} m²): a case there "
                           f"is given {min(grid.code, grids[j].code)}")
    return out


class GridIndex:
    """Grids queried by point (an STRtree over their polygons; a point on a shared edge belongs to both, and is
    given the lower code, as is one in an overlap).

    Example:
        >>> GridIndex(read_grids(Path("grids.geojson")).grids).grid_at(lat=4.6, lon=-74.08).code
        '110105001001001'
    """

    def __init__(self, grids: Iterable[Grid]) -> None:
        self.grids = sorted(grids, key=lambda g: g.code)
        self._tree = STRtree([g.shape for g in self.grids])
        self.by_code = {g.code: g for g in self.grids}

    def __len__(self) -> int:
        return len(self.grids)

    def grid_at(self, lat: float, lon: float) -> Grid | None:
        hits = self._tree.query(Point(lon, lat), predicate="intersects")  # covers: a point on an edge is inside
        return self.grids[int(min(hits))] if len(hits) else None
