"""Validated configuration: the problem-type taxonomy and the zones. Rejected before anything runs.

Every error is a `ConfigError` whose message names the file and the key path, e.g.
`zones.yaml: zones.2.polygon: a polygon needs at least 3 points`.
"""

from __future__ import annotations

import fnmatch
import re
from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from streetwatch.detector.errors import ConfigError
from streetwatch.detector.safe_yaml import read_yaml

DEFAULTS_DIR = Path(__file__).resolve().parent / "defaults"
DEFAULT_TAXONOMY = DEFAULTS_DIR / "taxonomy.yaml"
ZoneKind = Literal["no_parking", "no_vending", "approved_vending", "no_nonmotor_parking", "watch", "ignore"]
ZONE_KINDS: tuple[str, ...] = get_args(ZoneKind)

# What the case tables (cases/tables.py, which use these) can store: validation refuses longer text, so a
# taxonomy that works on SQLite (which ignores VARCHAR lengths) does not fail on PostgreSQL at the first sighting.
PROBLEM_TYPE_MAX_LEN = 64
CODE_MAX_LEN = 32
NAME_EN_MAX_LEN = 256
NAME_ZH_MAX_LEN = 128
CATEGORY_MAX_LEN = 64
CLASS_NAME_MAX_LEN = 64
PROBLEM_TYPE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # it names folders and URLs: no '', '/', '..' at the start


@lru_cache(maxsize=None)
def _admits_bool(model: type[BaseModel], field: str) -> bool:
    """Whether `field` may hold true/false anywhere: its type names bool or Any, or a nested model (which checks
    its own fields)."""

    def admits(tp: Any) -> bool:
        if tp is bool or tp is Any or (isinstance(tp, type) and issubclass(tp, BaseModel)):
            return True
        return any(admits(arg) for arg in get_args(tp))

    return admits(model.model_fields[field].annotation)


def _holds_bool(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, bool):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return False


class StrictModel(BaseModel):
    """Every streetwatch config model: unknown keys are errors, and so are NaN, infinity, and true/false
    where a number or text belongs (pydantic reads `analysis_fps: true` as 1.0)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name and not _admits_bool(cls, info.field_name) and _holds_bool(value):
            raise ValueError("true/false where a number or text belongs")
        return value


def _class_names(names: list[str]) -> list[str]:
    for name in names:
        if not name.strip() or name != name.strip():
            raise ValueError(f"class name {name!r} is empty or has spaces around it")
        if len(name) > CLASS_NAME_MAX_LEN:
            raise ValueError(f"class name {name[:20]!r}... is longer than {CLASS_NAME_MAX_LEN} characters")
    return names


class ProblemType(StrictModel):
    name_en: str = Field(max_length=NAME_EN_MAX_LEN)
    name_zh: str = Field("", max_length=NAME_ZH_MAX_LEN)
    category: str = Field("uncategorised", max_length=CATEGORY_MAX_LEN)
    category_zh: str = Field("", max_length=CATEGORY_MAX_LEN)
    code: str = Field("", max_length=CODE_MAX_LEN)
    classes: list[str] = Field(min_length=1, description="model class names that raise this type")
    min_confidence: float = Field(0.35, ge=0, le=1)
    min_dwell_s: float = Field(0.0, ge=0, le=86_400)
    min_hits: int = Field(1, ge=1, le=100_000)
    require_zones: list[ZoneKind] = Field(default_factory=list)
    exclude_zones: list[ZoneKind] = Field(default_factory=list)
    radius_m: float = Field(8.0, gt=0, le=1000)
    match_iou: float = Field(0.3, gt=0, le=1)
    not_inside: list[str] = Field(
        default_factory=list, description="model classes whose box, in the same frame, holds this one (at least "
        "60 % of its area): rubbish inside a bin's box is in the bin, or the spill the overflowing bin's case covers")
    not_inside_min_confidence: float = Field(
        0.5, ge=0, le=1, description="a not_inside box holds this one only when the model is at least this sure of "
        "it: a cardboard box of rubbish the model half-calls a bin (0.29) must not hide the rubbish (issue 20)")

    @field_validator("classes", "not_inside")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        return _class_names(names)

    @model_validator(mode="after")
    def _can_fire(self) -> ProblemType:
        """Settings that switch the type off for good are mistakes, not choices: say so instead of filing nothing."""
        own = sorted(set(self.not_inside) & set(self.classes))
        if own:
            raise ValueError(f"not_inside names the type's own class {', '.join(map(repr, own))}: every box lies "
                             "inside itself, so the type would never count")
        both = sorted(set(self.require_zones) & set(self.exclude_zones))
        if both:
            raise ValueError(f"zone kind {', '.join(map(repr, both))} is in both require_zones and exclude_zones: "
                             "such a zone never counts")
        return self


class RuleOverride(StrictModel):
    """Changes to one problem type of the taxonomy (only the keys given change)."""

    min_confidence: float | None = Field(None, ge=0, le=1)
    min_dwell_s: float | None = Field(None, ge=0, le=86_400)
    min_hits: int | None = Field(None, ge=1, le=100_000)
    require_zones: list[ZoneKind] | None = None
    exclude_zones: list[ZoneKind] | None = None
    radius_m: float | None = Field(None, gt=0, le=1000)
    match_iou: float | None = Field(None, gt=0, le=1)


class Taxonomy(StrictModel):
    problem_types: dict[str, ProblemType] = Field(min_length=1)

    @field_validator("problem_types")
    @classmethod
    def _type_names(cls, types: dict[str, ProblemType]) -> dict[str, ProblemType]:
        for name in types:
            if not re.match(PROBLEM_TYPE_PATTERN, name) or len(name) > PROBLEM_TYPE_MAX_LEN:
                shown = repr(name) if len(name) <= 70 else f"{name[:60]!r}... ({len(name)} characters)"
                raise ValueError(f"problem type name {shown} must be 1-{PROBLEM_TYPE_MAX_LEN} letters, digits, "
                                 "_ . - starting with a letter or digit")
        return types

    def types_for_class(self, class_name: str) -> list[str]:
        return [name for name, pt in self.problem_types.items() if class_name in pt.classes]


_WINDOW = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


MAX_PIXELS = 16_384  # the widest frame a zone may describe (16K)


class Zone(StrictModel):
    id: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    camera: str = Field(pattern=r"^[\p{L}\p{M}\p{N}_.*?/-]{1,128}$",  # camera ids may be 东门 (detector/ids.py)
                        description="camera/source id this zone belongs to; * and ? wildcards allowed")
    kind: ZoneKind
    polygon: list[tuple[float, float]] = Field(max_length=1000,
                                               description="[[x, y], ...] in pixels, or 0..1 with units: relative")
    units: Literal["pixels", "relative"] = "pixels"
    active: list[str] = Field(default_factory=list, max_length=24,
                              description="local time windows like '07:00-20:00'; empty = always")

    @field_validator("polygon")
    @classmethod
    def _polygon(cls, pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if len(pts) < 3:
            raise ValueError("a polygon needs at least 3 points")
        for x, y in pts:  # finite, sane numbers before shapely sees them (NaN makes GEOS raise)
            if not (-MAX_PIXELS <= x <= MAX_PIXELS and -MAX_PIXELS <= y <= MAX_PIXELS):
                raise ValueError(f"point [{x:g}, {y:g}] is outside any frame (|x|, |y| <= {MAX_PIXELS})")
        from shapely.geometry import Polygon

        if not Polygon(pts).is_valid:
            raise ValueError("polygon edges cross each other")
        return pts

    @model_validator(mode="after")
    def _relative_in_unit_square(self) -> Zone:
        if self.units == "relative":
            bad = next(((x, y) for x, y in self.polygon if not (0 <= x <= 1 and 0 <= y <= 1)), None)
            if bad:
                raise ValueError(f"units: relative, but point [{bad[0]:g}, {bad[1]:g}] is outside 0..1 "
                                 "(use units: pixels for pixel coordinates)")
        return self

    @field_validator("active")
    @classmethod
    def _windows(cls, windows: list[str]) -> list[str]:
        for w in windows:
            m = _WINDOW.match(w)
            # 24:00 ends a day; 24:59 is no time at all
            if not m or int(m[1]) > 23 or int(m[2]) > 59 or int(m[4]) > 59 or int(m[3]) > 24 or (
                    int(m[3]) == 24 and int(m[4]) != 0):
                raise ValueError(f"time window {w!r} must look like '07:00-20:00' (00:00 to 24:00)")
            if (int(m[1]), int(m[2])) == (int(m[3]), int(m[4])):
                raise ValueError(f"time window {w!r} starts when it ends: for all day leave 'active' out")
        return windows

    def windows(self) -> list[tuple[time, time]]:
        out = []
        for w in self.active:
            m = _WINDOW.match(w)
            assert m
            end = time(23, 59, 59) if int(m[3]) == 24 else time(int(m[3]), int(m[4]))
            out.append((time(int(m[1]), int(m[2])), end))
        return out

    def applies_to(self, camera_id: str) -> bool:
        return fnmatch.fnmatchcase(camera_id, self.camera)


def check_timezone(name: str) -> str:
    """`name` if it is a known IANA time zone (e.g. "Asia/Shanghai"); ValueError otherwise.

    The one check behind every `timezone` field (zones files and the daemon's cameras.yaml).
    """
    from zoneinfo import ZoneInfo

    try:
        ZoneInfo(name)
    except Exception as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc
    return name


def check_unique_ids(ids: list[str], what: str) -> None:
    """ValueError naming the first id given twice."""
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise ValueError(f"{what} id {i!r} is given twice")
        seen.add(i)


class ZoneFile(StrictModel):
    timezone: str = Field(default="UTC", description="IANA zone for time windows, e.g. Asia/Shanghai")
    zones: list[Zone] = Field(default_factory=list, max_length=10_000)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, name: str) -> str:
        return check_timezone(name)

    @field_validator("zones")
    @classmethod
    def _unique(cls, zones: list[Zone]) -> list[Zone]:
        check_unique_ids([z.id for z in zones], "zone")
        return zones


M = TypeVar("M", bound=BaseModel)


_SECRET_KEYS = {"url", "database", "token", "password"}  # their values may hold credentials: never echoed


def error_message(err: ErrorDetails) -> str:
    """A pydantic error's message with the offending value, e.g. `... or 'ignore' (got 'car_park')`."""
    msg = err["msg"].removeprefix("Value error, ")
    value = err.get("input")
    secret = any(str(k) in _SECRET_KEYS for k in err.get("loc", ())) or (isinstance(value, str) and "://" in value)
    if isinstance(value, (str, int, float, bool)) and not secret and err.get("type") not in ("missing",
                                                                                              "extra_forbidden"):
        shown = repr(value)
        msg += f" (got {shown[:60]}{'...' if len(shown) > 60 else ''})"
    return msg


def format_validation_error(path: Path | str, exc: ValidationError) -> str:
    """One line per problem: `file: key.path: message (got value)`."""
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"{path}: {where}: {error_message(err)}")
    return "\n".join(lines)


def load_model(model: type[M], path: Path) -> M:
    """Read YAML at `path` into `model`; ConfigError naming the file and the first bad key."""
    raw = read_yaml(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(path, exc)) from exc


def load_taxonomy(path: Path | None = None) -> Taxonomy:
    return load_model(Taxonomy, Path(path or DEFAULT_TAXONOMY))


def load_zones(path: Path | None) -> ZoneFile:
    return ZoneFile() if path is None else load_model(ZoneFile, Path(path))
