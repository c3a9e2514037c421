"""`streetwatch outbox status|deliver|dead|replay`: the work orders waiting for, sent to or refused by the
city-management platform (`cases.outbox`, docs/work_orders.md)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from streetwatch.commands.common import DEFAULT_DATA_DIR, DataDir, DbUrl, console, fail, one_line_errors, open_store

app = typer.Typer(help="Work orders for the city-management platform: status, delivery, dead letters, replay.",
                  no_args_is_help=True)
ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", "-c", help="A YAML with a work_orders: section (review settings or cameras.yaml); the review "
                           "settings' older webhook_* keys are read too.")]
UrlOpt = Annotated[str | None, typer.Option(envvar="STREETWATCH_WEBHOOK_URL", help="The platform's endpoint "
                                                                                  "(overrides the config).")]
SecretOpt = Annotated[str | None, typer.Option(envvar="STREETWATCH_WEBHOOK_SECRET", show_default=False,
                                               help="HMAC-SHA256 key (overrides the config).")]


def load_work_orders(config: Path | None, url: str | None = None, secret: str | None = None):
    """The work-order settings: the file's `work_orders:` section (or a review file's `webhook_*` keys), then
    --url/--secret over them. ConfigError naming the file and key on a bad value."""
    from pydantic import ValidationError

    from streetwatch.cases.work_orders import WorkOrderSettings
    from streetwatch.detector.config import error_message
    from streetwatch.detector.errors import ConfigError
    from streetwatch.detector.safe_yaml import read_yaml
    from streetwatch.review.settings import load_settings, outbox_settings

    settings = WorkOrderSettings()
    if config is not None:
        raw = read_yaml(config) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{config}: expected a mapping at the top level")
        if "work_orders" in raw:
            try:
                settings = WorkOrderSettings.model_validate(raw["work_orders"] or {})
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(map(str, ("work_orders", *first["loc"])))
                raise ConfigError(f"{config}: {where}: {error_message(first)}") from exc
        elif "webhook_url" in raw:
            settings = outbox_settings(load_settings(config))
    update = {k: v for k, v in (("url", url), ("secret", secret)) if v is not None}
    if update:
        try:
            settings = WorkOrderSettings.model_validate({**settings.model_dump(), **update})
        except ValidationError as exc:
            raise ConfigError(f"--url: {error_message(exc.errors()[0])}") from exc
    return settings


@app.command("status")
@one_line_errors
def status(config: ConfigOpt = None, data_dir: DataDir = DEFAULT_DATA_DIR, db: DbUrl = None) -> None:
    """Orders per state (pending, delivered, dead), when the next one is due, and where they go.

    Example: streetwatch outbox status --config review.yaml
    """
    from streetwatch.cases import outbox
    from streetwatch.cases.store import as_utc, redact

    settings = load_work_orders(config)
    store = open_store(data_dir, db)
    with store.session() as ses:
        found, due = outbox.counts(ses), outbox.next_due(ses)
    for state in outbox.STATES:
        console.print(f"{state:10} {found[state]:>8,}", highlight=False)
    console.print(f"next due   {as_utc(due).isoformat() if due else '-'}", highlight=False)
    target = f"{redact(settings.url)} (send: {settings.send})" if settings.url else "no url configured"
    console.print(escape(f"platform   {target}"), highlight=False)


@app.command("deliver")
@one_line_errors
def deliver(
    once: Annotated[bool, typer.Option("--once", help="Send what is due now, then exit (default: keep running "
                                                      "until Ctrl-C / SIGTERM).")] = False,
    config: ConfigOpt = None, url: UrlOpt = None, secret: SecretOpt = None,
    data_dir: DataDir = DEFAULT_DATA_DIR, db: DbUrl = None,
) -> None:
    """Send due work orders (at least once; retries wait in the database, so a restart resumes them).

    Example: streetwatch outbox deliver --once --config review.yaml
    """
    from streetwatch.cases.delivery import OutboxWorker, TurnReport

    settings = load_work_orders(config, url, secret)
    if not settings.enabled:
        fail("no platform url: set work_orders.url in --config, or --url / STREETWATCH_WEBHOOK_URL "
             "(and send is not off)")
    store = open_store(data_dir, db)
    worker = OutboxWorker(store.sessions, settings)
    if not once:
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        console.print(f"delivering work orders as {worker.name}; Ctrl-C to stop", highlight=False)
        try:
            worker.run(stop)
        except KeyboardInterrupt:
            stop.set()
        return
    total = TurnReport()
    try:
        while True:  # what is due now; an order failing again waits for its backoff, past this run
            turn = worker.deliver_once()
            total = TurnReport(*(a + b for a, b in zip(vars(total).values(), vars(turn).values())))
            if turn.claimed == 0 and turn.queued == 0:
                break
    finally:
        worker.close()
    console.print(f"{total.claimed} attempt(s): {total.delivered} delivered, {total.retrying} to retry, "
                  f"{total.dead} dead-lettered" + (f"; {total.queued} case(s) queued" if total.queued else ""),
                  highlight=False)
    raise typer.Exit(1 if total.dead else 0)


@app.command("dead")
@one_line_errors
def dead(limit: Annotated[int, typer.Option(min=1, help="Show at most this many, oldest first.")] = 100,
         data_dir: DataDir = DEFAULT_DATA_DIR, db: DbUrl = None) -> None:
    """The dead letters: orders whose attempts are spent or that the platform refused, with the last error.

    Example: streetwatch outbox dead
    """
    from streetwatch.cases import outbox
    from streetwatch.cases.store import as_utc

    store = open_store(data_dir, db)
    with store.session() as ses:
        rows = outbox.orders(ses, outbox.DEAD, limit)
        found = outbox.counts(ses)[outbox.DEAD]
    table = Table(title=f"{len(rows)} of {found} dead work order(s)" if found > len(rows) else
                  f"{found} dead work order(s)")
    for col in ("id", "case", "event", "attempts", "dead since", "last error"):
        table.add_column(col)
    for o in rows:
        table.add_row(str(o.id), str(o.case_id), o.event, str(o.attempts),
                      f"{as_utc(o.dead_at):%Y-%m-%d %H:%M:%S}" if o.dead_at else "", escape(o.last_error or ""))
    console.print(table)


@app.command("replay")
@one_line_errors
def replay(
    ids: Annotated[list[int] | None, typer.Argument(help="Dead work orders to send again.")] = None,
    all_dead: Annotated[bool, typer.Option("--all-dead", help="Every dead work order.")] = False,
    data_dir: DataDir = DEFAULT_DATA_DIR, db: DbUrl = None,
) -> None:
    """Put dead work orders back in the queue, due now, with their attempts counted afresh (same key and body).

    Example: streetwatch outbox replay 12 13    |    streetwatch outbox replay --all-dead
    """
    from streetwatch.cases import outbox

    if bool(ids) == all_dead:
        fail("name the dead work orders to replay (IDs), or --all-dead")
    store = open_store(data_dir, db)
    with store.sessions.begin() as ses:
        done = outbox.replay(ses, None if all_dead else list(ids or []))
    missed = sorted(set(ids or []) - set(done))
    console.print(f"{len(done)} work order(s) queued again" + (f": {', '.join(map(str, done))}" if done else ""),
                  highlight=False)
    if missed:
        fail(f"not dead (or no such work order): {', '.join(map(str, missed))}", code=1)
