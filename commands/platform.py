"""`streetwatch platform report CASE EVENT`: record what the city-management platform did with a case (派遣, 处置完成,
核查, 结案, 退回) from the command line — for a platform that sends status files or a clerk who reads them off its
screen; a platform that can call HTTP posts to the review app's /api/platform/events (docs/work_orders.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from streetwatch.commands.common import DEFAULT_DATA_DIR, DataDir, DbUrl, console, fail, one_line_errors, open_store

app = typer.Typer(help="What the city-management platform did with cases.", no_args_is_help=True)


@app.command("report")
@one_line_errors
def report(
    case_id: Annotated[int, typer.Argument(help="The case (its id in streetwatch, as the work order gave it).")],
    event: Annotated[str, typer.Argument(help="dispatched|handled|checked|closed|rejected, or 派遣|处置完成|核查|结案|退回.")],
    ref: Annotated[str, typer.Option(help="The platform's id of this report: the same report twice changes nothing.")],
    at: Annotated[str | None, typer.Option(help="When it happened (ISO 8601 with offset); default now.")] = None,
    deadline: Annotated[str | None, typer.Option(help="For dispatched: the platform's deadline.")] = None,
    note: Annotated[str, typer.Option(help="The platform's note.")] = "",
    actor: Annotated[str, typer.Option(help="Who on the platform.")] = "platform",
    dispatch_hours: Annotated[float, typer.Option(min=0.01, help="Deadline of a dispatch that names none.")] = 24.0,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    db: DbUrl = None,
) -> None:
    """Apply one platform report to a case: the case's status follows; 处置完成 hands the place to the automatic
    re-check, whose result goes back through the outbox.

    Example: streetwatch platform report 12 处置完成 --ref PLAT-2026-000123-3 --at 2026-12-05T10:00+08:00
    """
    from streetwatch.cases.platform_status import PlatformReport, apply_report, platform_time

    try:
        when, due = platform_time(at, "--at"), platform_time(deadline, "--deadline")
    except ValueError as exc:
        fail(str(exc))
    report_ = PlatformReport(event=event, ref=ref, case_id=case_id, at=when, deadline=due, note=note, actor=actor)
    with open_store(data_dir, db).sessions.begin() as ses:
        done = apply_report(ses, report_, handle_hours=dispatch_hours)
    due = f", re-check from {done.due_at:%Y-%m-%d %H:%M} UTC" if done.due_at and done.event != "dispatched" else (
        f", deadline {done.due_at:%Y-%m-%d %H:%M} UTC" if done.due_at else "")
    what = "already recorded (same --ref): nothing changed" if done.duplicate else f"case {done.case_id} is now " \
        f"{done.status}{due}"
    console.print(f"{done.event}: {what}", highlight=False)
