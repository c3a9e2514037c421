"""`streetwatch cases list|show|export|regrid|re-check-places|expire-evidence`: read the cases a run filed; place
them in the bureau's unit grids; re-check their places; delete evidence past its retention."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from streetwatch.cases.status import CaseStatus
from streetwatch.commands.common import (
    DEFAULT_DATA_DIR,
    DataDir,
    DbUrl,
    console,
    err_console,
    fail,
    one_line_errors,
    open_store,
    parse_when,
)

app = typer.Typer(help="List, inspect and export cases.", no_args_is_help=True)


def _filters(type_, status, camera, since, until, store=None, grid=None):
    from streetwatch.cases.export import CaseFilter

    if type_ is not None:
        check_type(type_, store)
    if grid is not None and store is not None:
        check_grid(grid, store)
    return CaseFilter(problem_type=type_, status=status, camera_id=camera, since=parse_when(since, "--since"),
                      until=parse_when(until, "--until"), grid=grid)


TypeOpt = Annotated[str | None, typer.Option("--type", help="Problem type, e.g. illegal_parking.")]
StatusOpt = Annotated[CaseStatus | None, typer.Option(help="Case status.", case_sensitive=False)]
CameraOpt = Annotated[str | None, typer.Option(help="Camera id.")]
SinceOpt = Annotated[str | None, typer.Option(help="Last seen at or after (ISO 8601).")]
UntilOpt = Annotated[str | None, typer.Option(help="First seen at or before (ISO 8601).")]
GridOpt = Annotated[str | None, typer.Option(
    "--grid", help="Unit grid code (cases regrid --grids loads them); none: the cases in no grid.")]
LimitOpt = Annotated[int, typer.Option(min=0, help="Show at most this many, newest first; 0: all.")]
CodesOpt = Annotated[str | None, typer.Option(
    "--codes", envvar="STREETWATCH_CODES",
    help="Code scheme of the output: streetwatch (the codes as filed, default), cjt214-2013, gbt47678-2026, or a "
         "bureau's CSV table (docs/codes.md).")]


def _codes(setting: str | None):
    """The code profile `--codes` names, loaded (and refused, one line per problem) before any case is read."""
    from streetwatch.detector.codes import load_code_profile

    profile = load_code_profile(setting)
    for line in profile.warnings if profile else ():
        err_console.print(f"warning: {line}", highlight=False, markup=False)
    return profile


def list_title(shown: int, matching: int | None = None) -> str:
    """`12 case(s)`, or `50 of 46,210 case(s)` when the list is cut: a cut list never passes for the whole."""
    if matching is None or matching <= shown:
        return f"{shown:,} case(s)"
    return f"{shown:,} of {matching:,} case(s)"


@app.command("list")
@one_line_errors
def list_cases(type_: TypeOpt = None, status: StatusOpt = None, camera: CameraOpt = None, since: SinceOpt = None,
               until: UntilOpt = None, grid: GridOpt = None, limit: LimitOpt = 50,
               data_dir: DataDir = DEFAULT_DATA_DIR, db: DbUrl = None) -> None:
    """List cases, newest first; the title says how many match when not all are shown.

    Example: streetwatch cases list --type illegal_parking --status new --since 2026-11-01
    """
    from streetwatch.cases.export import count_cases, query_cases

    store = open_store(data_dir, db)
    filters = _filters(type_, status, camera, since, until, store, grid)
    rows = query_cases(store, filters, limit=limit)
    # counted only when the limit was reached: below it, the rows are all there is
    matching = count_cases(store, filters) if limit and len(rows) >= limit else len(rows)
    table = Table(title=list_title(len(rows), matching))
    for col in ("id", "type", "status", "camera", "first seen", "last seen", "sightings", "conf", "place", "grid"):
        table.add_column(col, no_wrap=col in ("id", "type", "status"), overflow="fold")
    for c in rows:
        place = f"{c['lat']:.6f},{c['lon']:.6f}" if c["lat"] is not None else " ".join(
            filter(None, (c.get("scene_id"), c["zone_id"])))  # the scene: which PTZ preset / view of the camera
        table.add_row(str(c["id"]), c["problem_type"], c["status"], c["camera_id"] or "", c["first_seen"][:19],
                      c["last_seen"][:19], str(c["sighting_count"]), f"{c['best_confidence']:.2f}", place,
                      c["grid_code"] or f"none: {c['grid_note']}")
    console.print(table)
    if matching > len(rows):  # said again below the table: 50 rows push the title off the screen
        console.print(f"showing the newest {len(rows):,} of {matching:,} matching cases (use --limit N, 0 for all)",
                      highlight=False)


@app.command("show")
@one_line_errors
def show_case(
    case_id: int,
    format_: Annotated[str, typer.Option("--format", help="text (readable) | json")] = "text",
    data_dir: DataDir = DEFAULT_DATA_DIR, db: DbUrl = None, codes: CodesOpt = None,
) -> None:
    """Show one case: its code and names, where its evidence came from (file, seconds into it, frame),
    evidence files, sightings and history.

    Example: streetwatch cases show 12 --format json
    """
    from streetwatch.cases.export import case_detail, case_text

    if format_ not in ("text", "json"):
        raise typer.BadParameter(f"--format {format_!r}: choose text or json")
    profile = _codes(codes)
    detail = case_detail(open_store(data_dir, db), case_id, profile)
    if detail is None:
        fail(f"case {case_id}: no such case", 1)
    if format_ == "json":
        import json

        sys.stdout.write(json.dumps(detail, ensure_ascii=False, indent=1, default=str) + "\n")
    else:
        sys.stdout.write(case_text(detail))  # not rich: a path or camera id may hold [markup]


@app.command("export")
@one_line_errors
def export_cases(
    format_: Annotated[str, typer.Option("--format", help="csv | json | geojson")] = "csv",
    out: Annotated[Path | None, typer.Option(help="Write here instead of standard output.")] = None,
    gcj02: Annotated[bool, typer.Option("--gcj02", help="GeoJSON in GCJ-02 (AutoNavi/Tencent maps), approximate.")]
    = False,
    type_: TypeOpt = None, status: StatusOpt = None, camera: CameraOpt = None, since: SinceOpt = None,
    until: UntilOpt = None, grid: GridOpt = None, data_dir: DataDir = DEFAULT_DATA_DIR, db: DbUrl = None,
    codes: CodesOpt = None,
) -> None:
    """Export cases as CSV, JSON or GeoJSON (RFC 7946: lon, lat; only cases with a position), coded in the
    scheme --codes names; each with its unit grid (code, name, head, or why it is in none).

    Example: streetwatch cases export --format geojson --out cases.geojson --status confirmed --codes gbt47678-2026
    """
    from streetwatch.cases.export import render

    if format_ not in ("csv", "json", "geojson"):
        raise typer.BadParameter(f"--format {format_!r}: choose csv, json or geojson")
    profile = _codes(codes)
    store = open_store(data_dir, db)
    text = render(store, _filters(type_, status, camera, since, until, store, grid), format_, gcj02=gcj02,
                  warn=lambda line: err_console.print(f"warning: {line}", highlight=False, markup=False),
                  codes=profile)
    if out:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out}")
    else:
        sys.stdout.write(text)


@app.command("regrid")
@one_line_errors
def regrid_cases(
    grids: Annotated[Path | None, typer.Option(
        help="The bureau's unit grids (GeoJSON, docs/grids.md): checked, then stored in place of the old ones.")]
    = None,
    cameras: Annotated[Path | None, typer.Option(
        help="A cameras.yaml: its cameras' location and grid: are stored first (batch runs, edited positions).")]
    = None,
    data_dir: DataDir = DEFAULT_DATA_DIR, db: DbUrl = None,
) -> None:
    """Place every case in its unit grid (单元网格): by its ground position, else its camera's grid: in
    cameras.yaml, else its camera's position. New cases are placed when filed; run this after loading or editing
    the grids (--grids) or camera positions (--cameras). A malformed grids file changes nothing.

    Example: streetwatch cases regrid --grids grids.geojson
    """
    from streetwatch.cases import grids as grid_store
    from streetwatch.cases.grid_file import read_grids

    grid_set = read_grids(grids) if grids is not None else None  # refused whole, before anything is stored
    for line in grid_set.warnings if grid_set else ():
        err_console.print(f"warning: {line}", highlight=False, markup=False, soft_wrap=True)
    placed = _camera_grids(cameras) if cameras is not None else None
    store = open_store(data_dir, db)
    with store.sessions.begin() as ses:
        if grid_set is not None:
            grid_store.save_grids(ses, grid_set)
        report = grid_store.regrid(ses, placed)
    for line in report.warnings:
        err_console.print(f"warning: {line}", highlight=False, markup=False, soft_wrap=True)
    for line in report.lines():
        console.print(line, highlight=False, soft_wrap=True)


def _camera_grids(path: Path) -> dict[str, tuple[tuple[float, float] | None, str | None]]:
    """Camera id -> (location, named grid) from a cameras.yaml, validated in full (as `config check` does)."""
    from streetwatch.camera_daemon.config import check_daemon_config

    cfg, _warnings = check_daemon_config(path)
    return {c.id: ((c.location.lat, c.location.lon) if c.location else None, getattr(c, "grid", None))
            for c in cfg.cameras}


@app.command("re-check-places")
@one_line_errors
def recheck_places(
    camera: CameraOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would move; change nothing.")] = False,
    evidence_dir: Annotated[Path | None, typer.Option(help="Evidence root (default: DATA_DIR/evidence).")] = None,
    taxonomy: Annotated[Path | None, typer.Option(help="Problem-type taxonomy YAML (its match_iou).")] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR, db: DbUrl = None,
) -> None:
    """Split the cases that "same camera + overlapping boxes" merged across places (a PTZ camera's presets, a
    re-aimed camera), by the scene each sighting's stored evidence frame shows; cases of one place take its
    scene. Run once after upgrading to scene-aware dedup.

    Example: streetwatch cases re-check-places --dry-run
    """
    from streetwatch.cases.places import recheck_store
    from streetwatch.detector.config import load_taxonomy

    report = recheck_store(open_store(data_dir, db), load_taxonomy(taxonomy), evidence_dir or data_dir / "evidence",
                           camera, dry_run)
    for line in report.lines():
        console.print(line, highlight=False, soft_wrap=True)
    if dry_run:
        console.print("dry run: nothing was changed")


def _days(text: str, option: str) -> int | None:
    """A days option's value: a whole number, or `keep` (None)."""
    if text.strip().lower() == "keep":
        return None
    try:
        return int(text)
    except ValueError:
        raise typer.BadParameter(f"{option} {text!r}: a whole number of days, or keep") from None


RETENTION_OPTIONS = {"raw_days_unconfirmed": "--raw-days", "raw_days_confirmed": "--confirmed-days",
                     "redacted_days": "--redacted-days"}


@app.command("expire-evidence")
@one_line_errors
def expire_evidence_cmd(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be deleted; delete nothing.")] = False,
    raw_days: Annotated[int | None, typer.Option(
        help="Raw frames of rejected or never-reviewed cases older than this many days are deleted [default: 30].")]
    = None,
    confirmed_days: Annotated[str | None, typer.Option(
        help="Raw frames of confirmed, dispatched or resolved cases: days, or keep [default: 365].")] = None,
    redacted_days: Annotated[str | None, typer.Option(
        help="Redacted copies, any status: days, or keep [default: keep].")] = None,
    evidence_dir: Annotated[Path | None, typer.Option(help="Evidence root (default: DATA_DIR/evidence).")] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR, db: DbUrl = None,
) -> None:
    """Delete evidence past its retention: raw frames of rejected and never-reviewed cases after 30 days,
    of positive cases after 365, redacted copies only when --redacted-days says so. Cases, sightings and the
    files' SHA-256 stay; each emptied entry says when it expired, and the case's history says why. The camera
    daemon runs the same job (its `retention:` section).

    Example: streetwatch cases expire-evidence --dry-run --raw-days 30 --confirmed-days 365
    """
    from pydantic import ValidationError

    from streetwatch.cases.expire import expire_evidence
    from streetwatch.cases.retention import RetentionSettings
    from streetwatch.detector.config import error_message

    given: dict[str, int | None] = {} if raw_days is None else {"raw_days_unconfirmed": raw_days}
    for key, text in (("raw_days_confirmed", confirmed_days), ("redacted_days", redacted_days)):
        if text is not None:
            given[key] = _days(text, RETENTION_OPTIONS[key])
    try:
        settings = RetentionSettings.model_validate(given)
    except ValidationError as exc:
        raise typer.BadParameter("; ".join(
            f"{RETENTION_OPTIONS.get(str(e['loc'][0]), '') if e['loc'] else ''} {error_message(e)}".strip()
            for e in exc.errors())) from None
    report = expire_evidence(open_store(data_dir, db), evidence_dir or data_dir / "evidence", settings,
                             dry_run=dry_run, actor="retention")
    for line in report.lines():
        console.print(line, highlight=False, soft_wrap=True)
    if dry_run:
        console.print("dry run: nothing was deleted")


def check_grid(code: str, store) -> None:
    """`--grid` must name a loaded grid (or `none`): a typo is an error, not an empty list."""
    from streetwatch.cases.export import NO_GRID
    from streetwatch.cases.grids import grid_rows

    if code == NO_GRID:
        return
    with store.session() as ses:
        known = grid_rows(ses)
    if code not in known:
        shown = ", ".join(sorted(known)[:10]) + (f" and {len(known) - 10} more" if len(known) > 10 else "")
        raise typer.BadParameter(f"--grid {code!r} is not a loaded grid; "
                                 + (f"known: {shown}" if known else "none are loaded (cases regrid --grids FILE)"))


def check_type(name: str, store=None) -> None:
    """`--type` must name a problem type (the bundled taxonomy's, or one already filed): a typo such as
    `garbage` (a model class) for `exposed_garbage` is an error listing the valid ones, not an empty list."""
    from sqlalchemy import select

    from streetwatch.cases import tables as t
    from streetwatch.detector.config import load_taxonomy

    known = set(load_taxonomy().problem_types)
    if store is not None:
        with store.session() as ses:
            known |= set(ses.scalars(select(t.Case.problem_type).distinct()))
    if name not in known:
        raise typer.BadParameter(f"--type {name!r} is not a problem type; known: {', '.join(sorted(known))}")

