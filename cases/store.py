"""The case store: one engine, Alembic-migrated schema, and the transaction that files a sighting.

`record_sighting` is the only writer of cases from the pipeline. It runs dedup inside a lock
per problem type — `pg_advisory_xact_lock` on PostgreSQL, `BEGIN IMMEDIATE` on SQLite — so two
workers (threads, processes or hosts) that see the same problem at the same moment produce one
case, not two.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from streetwatch.cases import grids, locks, recheck, scenes
from streetwatch.cases import tables as t
from streetwatch.cases.dedup import CaseView, match_case, place_box
from streetwatch.cases.evidence_tiers import same_files, superseded_paths
from streetwatch.cases.status import CaseStatus, RunStatus
from streetwatch.cases.tables import as_utc, from_unix  # callers of the store take both from here
from streetwatch.detector.config import Taxonomy
from streetwatch.detector.errors import StoreError
from streetwatch.detector.scene import Scene, SceneBook, SceneView, map_box_norm
from streetwatch.detector.sightings import Sighting

_MIGRATE_LOCK = threading.Lock()
MIGRATIONS = Path(__file__).resolve().parent / "migrations"



def sqlite_url(data_dir: Path) -> str:
    """The default database: SQLite in the data folder (the one home of this default)."""
    return f"sqlite:///{Path(data_dir).resolve() / 'streetwatch.db'}"

def _userinfo_split(url: str) -> tuple[str, str, str] | None:
    """(scheme, userinfo, rest) of a URL with credentials, the userinfo running to the LAST '@': SQLAlchemy's parser
    stops the password at the first '@', so a raw '@' in a password would be read as part of the host."""
    scheme, sep, rest = url.partition("://")
    at = rest.rfind("@")
    if not sep or at < 0 or rest.startswith("/"):  # no credentials; or a file path (sqlite:////data/a@b.db)
        return None
    return scheme, rest[:at], rest[at + 1:]


def quote_password(url: str) -> str:
    """`url` with a raw '@' in its password percent-encoded, so it connects to the right host with the right
    password (and its redaction hides all of it); any other URL unchanged."""
    from urllib.parse import quote

    parts = _userinfo_split(url)
    if parts is None or "@" not in parts[1]:
        return url
    scheme, userinfo, rest = parts
    user, _, password = userinfo.partition(":")
    return f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{rest}"


def redact(url: str) -> str:
    """The URL with its password, and a `password=` query value, shown as ***."""
    import re

    parts = _userinfo_split(url)
    if parts is not None:
        user, colon, _ = parts[1].partition(":")
        url = f"{parts[0]}://{user}{':***' if colon else ''}@{parts[2]}"
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable database URL>"
    return re.sub(r"([?&](?:password|passwd|pwd)=)[^&]*", r"\1***", shown, flags=re.IGNORECASE)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record):  # pragma: no cover - driver glue
            dbapi_conn.isolation_level = None  # let SQLAlchemy's "begin" hook choose the BEGIN kind
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # pragma: no cover - driver glue
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock up front: dedup reads then writes

        return engine
    return create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (creates it on an empty database)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # Alembic keeps per-run state in module globals (one migration per process at a time), and two
    # hosts migrating one empty PostgreSQL at once would race on CREATE TABLE: serialise both.
    with _MIGRATE_LOCK, engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            locks.hold(conn, locks.MIGRATE)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")  # every head: branches written side by side migrate before their merge


@dataclass(frozen=True)
class Recorded:
    case_id: int
    sighting_id: int
    created: bool  # a new case was opened
    reopened: bool  # a resolved case came back
    # evidence files (relative paths) of the version this one replaced that nothing names any more: the caller
    # deletes them once the transaction is committed (cases.evidence: files are never rewritten)
    superseded: tuple[str, ...] = ()


class CaseStore:
    """Cases, sightings and runs in any SQLAlchemy database.

    Example:
        >>> store = CaseStore("sqlite:///cases.db")
        >>> store.record_sighting(sighting, taxonomy, evidence={}, run_id=None).case_id
        1
    """

    def __init__(self, url: str, migrate_schema: bool = True) -> None:
        self.url = url
        try:
            self.engine = make_engine(url)
            if migrate_schema:
                migrate(self.engine)
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"database {redact(url)}: {exc.__class__.__name__}: {str(exc).splitlines()[0]}") from exc
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.grids = grids.GridCache()  # the unit grids a case is placed in when filed (cases.grids)

    def session(self) -> Session:
        return self.sessions()

    def ensure_camera(self, camera_id: str, kind: str = "file", name: str = "",
                      location: tuple[float, float] | None = None, grid: str | None = None) -> None:
        """The camera's row (the one place that creates it: batch runs, the cluster driver and the daemon all
        call this); a location given (detect --location / --cameras, the daemon's cameras.yaml) is stored or
        updated, so its fixed-camera cases can be drawn on a map at the camera; so is a grid named for it
        (cameras.yaml `grid:`), the grid of its cases. StoreError when the database cannot be reached."""
        from sqlalchemy.exc import IntegrityError

        for _attempt in range(2):  # two workers may insert the same camera at once: the loser updates instead
            try:
                with self.sessions.begin() as ses:
                    row = ses.get(t.Camera, camera_id)
                    if row is None:
                        row = t.Camera(id=camera_id, kind=kind, name=name or camera_id)
                        ses.add(row)
                    if location is not None:
                        row.lat, row.lon = location
                    if grid is not None:
                        row.grid_code = grid
                return
            except IntegrityError:
                continue
            except OperationalError as exc:
                raise StoreError(f"database {redact(self.url)}: {str(exc.orig).splitlines()[0]}") from exc

    def record_sighting(
        self, s: Sighting, taxonomy: Taxonomy, evidence: dict, run_id: int | None, actor: str = "streetwatch"
    ) -> Recorded:
        """File `s`: update its earlier version, or merge it into the matching case, or open a case."""
        spec = taxonomy.problem_types[s.problem_type]
        try:
            with self.sessions.begin() as ses:
                locks.lock_problem_types(ses, [s.problem_type])
                s = self._placed(ses, s)
                row = ses.scalars(select(t.Sighting).where(t.Sighting.key == s.key)).first()
                if row is not None:
                    return self._update_existing(ses, row, s, evidence)
                case, created, reopened = self._find_or_open_case(ses, s, spec, actor)
                row = self._new_sighting_row(s, case.id, run_id, evidence)
                ses.add(row)
                ses.flush()
                self._absorb(case, s, evidence)
                grids.assign(ses, case, self.grids.index(ses))
                case.sighting_count += 1
                ses.add(t.CaseEvent(case_id=case.id, actor=actor, action="sighting",
                                    detail={"sighting": row.id, "camera": s.camera_id, "key": s.key}))
                recheck.on_sighting(ses, case, from_unix(s.last_seen), sighting_id=row.id, evidence=evidence)
                return Recorded(case.id, row.id, created, reopened)
        except OperationalError as exc:
            raise StoreError(f"database {redact(self.url)}: {str(exc.orig).splitlines()[0]}") from exc

    @staticmethod
    def _placed(ses: Session, s: Sighting) -> Sighting:
        """`s` with its scene as stored: a scene the analysis met first is registered (or found: another
        worker may have registered the same place under another number) and its box mapped onto it."""
        if s.scene_view is None or s.scene_id is None:
            return s
        scene_id, to_ref, ref_size, view_size = scenes.register_text(ses, s.camera_id, s.scene_id, s.scene_view)
        box = map_box_norm(place_box(s), to_ref, view_size, ref_size)
        return replace(s, scene_id=scene_id, scene_box=box, scene_view=None)

    def extend_sighting(self, s: Sighting) -> int | None:
        """A filed sighting seen longer (`RuleEngine.progress`, before a batch checkpoint): its span and hits, and
        its case's span, only. Its evidence, score, box and place come with its final version, and nothing else
        moves: a version without a frame must not take part in choosing the case's evidence. Returns the case id
        (None: the key is not filed, so there is nothing to extend)."""
        try:
            with self.sessions.begin() as ses:
                locks.lock_problem_types(ses, [s.problem_type])
                row = ses.scalars(select(t.Sighting).where(t.Sighting.key == s.key)).first()
                if row is None:
                    return None
                last = from_unix(s.last_seen)
                if s.last_ts > row.last_ts:
                    row.last_seen, row.last_ts = last, s.last_ts
                row.hits = max(row.hits, s.hits)
                case = ses.get(t.Case, row.case_id)
                if case is not None and last > as_utc(case.last_seen):
                    case.last_seen = last
                return row.case_id
        except OperationalError as exc:
            raise StoreError(f"database {redact(self.url)}: {str(exc.orig).splitlines()[0]}") from exc

    def place(self, s: Sighting) -> Sighting:
        """`s` with its scene as stored (registered if new): call before writing its evidence, whose footer
        names the scene, when another worker may have numbered the place first. StoreError when the database
        cannot be reached."""
        try:
            with self.sessions.begin() as ses:
                return self._placed(ses, s)
        except OperationalError as exc:
            raise StoreError(f"database {redact(self.url)}: {str(exc.orig).splitlines()[0]}") from exc

    def scene_book(self, camera_id: str, newest: int | None = None) -> SceneBook:
        """The camera's stored scenes (the `newest` numbers only, when given), for the analysis of its next
        footage."""
        with self.session() as ses:
            return scenes.load_book(ses, camera_id, newest)

    def register_scenes(self, camera_id: str, new: list[Scene]) -> dict[str, str]:
        """Store scenes that footage showed for the first time, so that their ids hold next time (those a
        sighting named are stored already and found again). Returns {id in the analysis: stored id}: they
        differ where another worker stored the same place first."""
        with self.sessions.begin() as ses:
            return {scene.scene_id: scenes.register(ses, camera_id, scene.scene_id, scene.reference)[0]
                    for scene in new}

    def add_scene_views(self, camera_id: str, views: list[tuple[int, SceneView, np.ndarray]]) -> int:
        """Keep photos of stored scenes taken from elsewhere as more views of them (`cases.scenes.add_view`):
        (scene number, view, homography onto the scene's reference) each. Returns how many were kept."""
        with self.sessions.begin() as ses:
            return sum(scenes.add_view(ses, camera_id, number, view, h) for number, view, h in views)

    def _find_or_open_case(self, ses: Session, s: Sighting, spec, actor: str) -> tuple[t.Case, bool, bool]:
        query = select(t.Case).where(t.Case.problem_type == s.problem_type)
        if s.lat is not None:
            assert s.lon is not None  # a sighting is placed with both coordinates (detector.rules) or neither
            span = 0.01  # ~1 km prefilter; exact distance in match_case
            query = query.where(t.Case.lat.between(s.lat - span, s.lat + span),
                                t.Case.lon.between(s.lon - span, s.lon + span))
        else:
            query = query.where(t.Case.camera_id == s.camera_id)
        candidates = ses.scalars(query).all()
        views = [CaseView(c.id, c.problem_type, c.camera_id, tuple(c.box_norm["xyxy"]) if c.box_norm else None,
                          c.lat, c.lon, c.uncertainty_m, c.status, c.scene_id) for c in candidates]
        match = match_case(s, views, spec)
        if match is not None:
            case = next(c for c in candidates if c.id == match.id)
            reopened = case.status == CaseStatus.RESOLVED
            if reopened:
                case.status = CaseStatus.NEW
                case.recurrence_count += 1
                ses.add(t.CaseEvent(case_id=case.id, actor=actor, action="reopened",
                                    detail={"from": CaseStatus.RESOLVED, "sighting_key": s.key}))
            return case, False, reopened
        seen = from_unix(s.first_seen)
        case = t.Case(problem_type=s.problem_type, category=spec.category, code=spec.code, name_zh=spec.name_zh,
                      name_en=spec.name_en, category_zh=spec.category_zh, camera_id=s.camera_id, status=CaseStatus.NEW,
                      first_seen=seen, last_seen=from_unix(s.last_seen), sighting_count=0,
                      box_norm={"xyxy": list(place_box(s))}, scene_id=s.scene_id, lat=s.lat, lon=s.lon,
                      uncertainty_m=s.uncertainty_m, zone_id=s.zone_id, best_confidence=-1.0, evidence={})
        ses.add(case)
        ses.flush()
        ses.add(t.CaseEvent(case_id=case.id, actor=actor, action="created", detail={"sighting_key": s.key}))
        return case, True, False

    @staticmethod
    def _new_sighting_row(s: Sighting, case_id: int, run_id: int | None, evidence: dict) -> t.Sighting:
        return t.Sighting(key=s.key, case_id=case_id, run_id=run_id, camera_id=s.camera_id,
                          problem_type=s.problem_type, class_name=s.class_name, first_seen=from_unix(s.first_seen),
                          last_seen=from_unix(s.last_seen), first_ts=s.first_ts, last_ts=s.last_ts, hits=s.hits,
                          confidence=s.confidence, box_norm={"xyxy": list(s.box_norm)}, frame_index=s.frame_index,
                          lat=s.lat, lon=s.lon, uncertainty_m=s.uncertainty_m, zone_id=s.zone_id, evidence=evidence,
                          source=s.source, source_offset_s=s.source_offset_s, frame_offset_s=s.frame_offset_s,
                          frame_seen=None if s.frame_seen is None else from_unix(s.frame_seen), scene_id=s.scene_id,
                          scene_box=None if s.scene_box is None else {"xyxy": list(s.scene_box)})

    def _update_existing(self, ses: Session, row: t.Sighting, s: Sighting, evidence: dict) -> Recorded:
        case = ses.get(t.Case, row.case_id)
        assert case is not None
        row.last_seen, row.last_ts, row.hits = from_unix(s.last_seen), s.last_ts, max(row.hits, s.hits)
        had = row.evidence
        if evidence:  # a newer version of this key's files: whatever showed the old ones shows these
            row.evidence = evidence
            if same_files(case.evidence, had) or same_files(case.evidence, evidence):
                case.evidence = evidence
        if s.source is not None:
            row.source, row.source_offset_s = s.source, s.source_offset_s
        # the evidence frame's facts follow its files: a version filed without rewriting them (the daemon near
        # its deadline) must not name a frame the images do not show
        if s.confidence >= row.confidence and (evidence or not row.evidence):
            row.confidence, row.box_norm, row.frame_index = s.confidence, {"xyxy": list(s.box_norm)}, s.frame_index
            row.frame_offset_s = s.frame_offset_s
            row.frame_seen = None if s.frame_seen is None else from_unix(s.frame_seen)
            if s.scene_box is not None:
                row.scene_id, row.scene_box = s.scene_id, {"xyxy": list(s.scene_box)}
        if s.lat is not None:
            row.lat, row.lon, row.uncertainty_m = s.lat, s.lon, s.uncertainty_m
        self._absorb(case, s, evidence)
        if s.lat is not None:  # the blended position may have crossed into the next grid
            grids.assign(ses, case, self.grids.index(ses))
        recheck.on_sighting(ses, case, from_unix(s.last_seen), sighting_id=row.id, evidence=evidence)
        gone: tuple[str, ...] = ()
        if evidence and had:  # the case's events (a re-check names the evidence that re-opened it) keep theirs
            events = ses.scalars(select(t.CaseEvent.detail).where(t.CaseEvent.case_id == case.id)).all()
            gone = superseded_paths(had, evidence, [case.evidence, *((d or {}).get("evidence") for d in events)])
        return Recorded(case.id, row.id, False, False, gone)

    @staticmethod
    def _absorb(case: t.Case, s: Sighting, evidence: dict) -> None:
        """Widen the case's time span; take the sighting's evidence if it is the best so far."""
        first, last = from_unix(s.first_seen), from_unix(s.last_seen)
        case.first_seen = min(as_utc(case.first_seen), first)
        case.last_seen = max(as_utc(case.last_seen), last)
        case.updated_at = datetime.now(timezone.utc)
        if s.confidence > case.best_confidence and (evidence or not case.evidence):
            case.best_confidence = s.confidence
            case.evidence = evidence or case.evidence
            case.box_norm = {"xyxy": list(place_box(s))}
        if case.scene_id is None and s.scene_id is not None and case.lat is None:
            # a case filed before scenes were known takes the scene of the first sighting that matched it
            case.scene_id, case.box_norm = s.scene_id, {"xyxy": list(place_box(s))}
        if s.lat is not None and case.lat is not None and s.uncertainty_m and case.uncertainty_m:
            # inverse-variance blend: more sightings, better position
            # (lat and lon are set together, on the sighting by detector.rules and on the case from a sighting)
            assert s.lon is not None and case.lon is not None
            wa, wb = 1 / case.uncertainty_m**2, 1 / s.uncertainty_m**2
            case.lat = (case.lat * wa + s.lat * wb) / (wa + wb)
            case.lon = (case.lon * wa + s.lon * wb) / (wa + wb)
            case.uncertainty_m = (wa + wb) ** -0.5

    def after_analysis(self, place, analysed_from: datetime, analysed_to: datetime, seen_case_ids) -> dict[int, str]:
        """核查: decide dispatched cases of `place` (camera id or `recheck.Area`) whose deadline passed."""
        with self.sessions.begin() as ses:
            return recheck.after_analysis(ses, place, analysed_from, analysed_to, seen_case_ids)

    # runs -------------------------------------------------------------------------------------
    def finished_run(self, sha256: str, settings_key: str) -> t.Run | None:
        with self.session() as ses:
            return ses.scalars(select(t.Run).where(t.Run.content_sha256 == sha256, t.Run.settings_key == settings_key,
                                                   t.Run.status == RunStatus.DONE)).first()

    def start_run(self, **fields) -> int:
        with self.sessions.begin() as ses:
            run = t.Run(**fields)
            ses.add(run)
            ses.flush()
            return run.id

    def finish_run(self, run_id: int, **fields) -> None:
        with self.sessions.begin() as ses:
            run = ses.get(t.Run, run_id)
            assert run is not None
            for key, value in fields.items():
                setattr(run, key, value)
            run.finished_at = datetime.now(timezone.utc)
