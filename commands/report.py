"""`streetwatch report`: the day's or week's cases for a bureau head, as an HTML page and CSV tables."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from streetwatch.commands.cases import CodesOpt, _codes
from streetwatch.commands.common import DEFAULT_DATA_DIR, DataDir, DbUrl, console, fail, one_line_errors, open_store


@one_line_errors
def report(
    period: Annotated[str | None, typer.Argument(help="A day (2026-12-05) or an ISO week (2026-W49); default: "
                                                      "yesterday, or last week with --week.")] = None,
    week: Annotated[bool, typer.Option("--week", help="Without PERIOD: the last full ISO week.")] = False,
    timezone: Annotated[str, typer.Option("--timezone", envvar="STREETWATCH_TIMEZONE",
                                          help="The bureau's time zone: where days begin, hours of day.")] = "UTC",
    out: Annotated[Path | None, typer.Option(help="Folder for report.html and the CSVs "
                                                  "(default: DATA_DIR/reports/PERIOD).")] = None,
    codes: CodesOpt = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    db: DbUrl = None,
) -> None:
    """Write the bureau report: new, confirmed, closed and recurring cases by type, grid and hour of day, the
    places that come back after closing, and each camera's uptime.

    Example: streetwatch report 2026-W49 --timezone Asia/Shanghai --codes gbt47678-2026
    """
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from streetwatch.cases.report import parse_period
    from streetwatch.cases.report_data import gather
    from streetwatch.cases.report_render import write_report

    try:
        today = datetime.now(ZoneInfo(timezone)).date()
    except (ZoneInfoNotFoundError, ValueError):
        fail(f"--timezone: unknown time zone {timezone!r} (e.g. Asia/Shanghai)")
    if period is None:
        monday = today - timedelta(days=today.isoweekday() - 1 + 7)
        period = f"{monday.isocalendar().year}-W{monday.isocalendar().week:02d}" if week else str(
            today - timedelta(days=1))
    try:
        span = parse_period(period, timezone)
    except ValueError as exc:
        fail(str(exc))
    profile = _codes(codes)
    result = gather(open_store(data_dir, db), span, profile)
    folder = out or data_dir / "reports" / span.label
    files = write_report(result, folder)
    t = result.totals
    console.print(f"{span.label} ({timezone}): {t.new} new, {t.confirmed} confirmed, {t.closed} closed, "
                  f"{t.recurring} recurring; {len(result.hot_spots)} hot spot(s), {len(result.cameras)} camera(s)")
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)
    console.print(f"wrote {files[0]} and {len(files) - 1} CSV tables in {folder}", highlight=False)
