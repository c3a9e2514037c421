"""`streetwatch telemetry`: show what a drone telemetry sidecar says, frame by frame."""

from __future__ import annotations

import csv
import io
import json
import sys
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from streetwatch.detector.errors import TelemetryError
from streetwatch.streams.telemetry import Telemetry, TelemetryEntry, load_telemetry

__all__ = ["OutputFormat", "telemetry"]

COLUMNS = (
    "index", "start_s", "end_s", "datetime", "lat", "lon", "rel_alt_m", "abs_alt_m",
    "gimbal_yaw_deg", "gimbal_pitch_deg", "gimbal_roll_deg",
)  # fmt: skip
# Camera settings, shown (in every format) when the file records any of them.
CAMERA_COLUMNS = ("iso", "shutter", "fnum", "focal_len_mm", "ev")


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


def _columns(t: Telemetry) -> tuple[str, ...]:
    """The fixed columns, plus the camera-setting columns the file records at least once."""
    camera = tuple(c for c in CAMERA_COLUMNS if any(getattr(e, c) is not None for e in t.entries))
    return COLUMNS + camera


def _row(entry: TelemetryEntry, columns: tuple[str, ...] = COLUMNS) -> dict[str, object]:
    when = None
    if entry.wall_time is not None:
        # Stored as UTC but written by the drone in local time: print it back without a zone.
        dt = datetime.fromtimestamp(entry.wall_time, timezone.utc).replace(tzinfo=None)
        when = dt.isoformat(sep=" ", timespec="milliseconds" if dt.microsecond % 1000 == 0 else "microseconds")
    return {
        "index": entry.index,
        "start_s": entry.start_s,
        "end_s": entry.end_s,
        "datetime": when,
        "lat": entry.lat,
        "lon": entry.lon,
        "rel_alt_m": entry.rel_alt_m,
        "abs_alt_m": entry.abs_alt_m,
        "gimbal_yaw_deg": entry.gimbal_yaw_deg,
        "gimbal_pitch_deg": entry.gimbal_pitch_deg,
        "gimbal_roll_deg": entry.gimbal_roll_deg,
        **{c: getattr(entry, c) for c in columns if c in CAMERA_COLUMNS},
    }


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.7g}" if abs(value) < 1000 else f"{value:.3f}"
    return str(value)


def _print_table(t: Telemetry) -> None:
    columns = _columns(t)
    table = Table(title=f"{t.path} ({t.format}, {len(t.entries)} entries, {t.duration_s:.1f} s)")
    for name in columns:
        table.add_column(name, justify="left" if name in ("datetime", "shutter") else "right", no_wrap=True)
    for entry in t.entries:
        table.add_row(*(_cell(v) for v in _row(entry, columns).values()))
    # Wide enough for every column when piped or captured; a terminal keeps its own width.
    Console(width=None if sys.stdout.isatty() else 240).print(table)


def _print_csv(t: Telemetry) -> None:
    columns = _columns(t)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for entry in t.entries:
        writer.writerow({k: ("" if v is None else v) for k, v in _row(entry, columns).items()})
    typer.echo(out.getvalue(), nl=False)


def telemetry(
    file: Annotated[Path, typer.Argument(help="DJI .SRT sidecar or telemetry .csv file.")],
    format: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="How to print the entries: table, json or csv.")
    ] = OutputFormat.table,
) -> None:
    """Print the per-frame entries of a drone telemetry file; problems (with line numbers) go to stderr.

    Columns: index, time code (s), date-time, lat, lon, height above take-off and sea level (m), gimbal angles,
    and the camera settings the file records (ISO, shutter, f-number, focal length in mm, EV). Damaged entries
    are left out and reported; a file without a usable entry exits 1 with one error line.

    Example:

        streetwatch telemetry flight.SRT --format csv > flight.csv
    """
    try:
        t = load_telemetry(file)
    except TelemetryError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if not t.entries:
        why = f" ({t.problems[0]})" if t.problems else ""
        typer.echo(f"error: {file}: no telemetry entries{why}", err=True)
        raise typer.Exit(1)
    fmt = OutputFormat(format)
    if fmt is OutputFormat.json:
        columns = _columns(t)
        entries = [_row(e, columns) for e in t.entries]
        doc = {"path": t.path, "format": t.format, "duration_s": t.duration_s, "entries": entries}
        typer.echo(json.dumps(doc, indent=1))
    elif fmt is OutputFormat.csv:
        _print_csv(t)
    else:
        _print_table(t)
    for problem in t.problems:
        typer.echo(f"{t.path}:{problem.line}: {problem.message}", err=True)
