"""`streetwatch serve`, `streetwatch users add|list|disable|enable` and `streetwatch dataset from-reviews`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from streetwatch.commands.common import DEFAULT_DATA_DIR, DataDir, DbUrl, console, db_url, fail, one_line_errors

users_app = typer.Typer(help="Manage the people who review cases (stored in the case database).",
                        no_args_is_help=True)
EvidenceOpt = Annotated[Path | None, typer.Option(help="Evidence folder (default: DATA_DIR/evidence).")]


@one_line_errors
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    config: Annotated[Path | None, typer.Option(help="Review settings YAML (sessions, webhook, map tiles).")] = None,
    webhook_url: Annotated[str | None, typer.Option(envvar="STREETWATCH_WEBHOOK_URL",
                                                    help="The bureau's case system (overrides the config).")] = None,
    evidence_dir: EvidenceOpt = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    db: DbUrl = None,
) -> None:
    """Serve the review web app: triage cases, merge/split, map, exports, hand-off to the bureau.

    Example: streetwatch serve --port 8000   (then open the printed URL and log in)
    """
    _check_listen(host, port)  # before anything is opened or created
    import uvicorn

    from streetwatch.cases.review_tables import User
    from streetwatch.cases.store import redact
    from streetwatch.review import create_app, load_settings

    settings = load_settings(config)
    if webhook_url:  # wins over both spellings in the file
        settings = settings.model_copy(update={
            "webhook_url": webhook_url, "work_orders": settings.work_orders.model_copy(update={"url": webhook_url})})
    url = db_url(data_dir, db)
    app = create_app(url, evidence_dir or data_dir / "evidence", settings)
    _deliver_in_app(app, settings)
    with app.state.store.session() as ses:
        if ses.query(User).count() == 0:
            console.print("no users yet: add one first with  streetwatch users add NAME --role admin")
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    console.print(f"streetwatch review on http://{shown}:{port}/   database: {redact(url)}")
    if host not in ("127.0.0.1", "localhost", "::1") and not settings.secure_cookies:
        console.print("[yellow]warning:[/] listening beyond this machine without secure_cookies: put it behind "
                      "HTTPS (a reverse proxy) and set secure_cookies: true, and trusted_proxies to the proxy's "
                      "address so that log-in limits see each client's own address")
    uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=False)


def _deliver_in_app(app, settings):
    """With a work-order URL (and `deliver_in_app`), a delivery worker thread beside the app (`cases.delivery`).
    Returns the event that stops it (None when none was started); the process's end stops it too."""
    import threading

    from streetwatch.cases.delivery import OutboxWorker
    from streetwatch.cases.store import redact
    from streetwatch.review.settings import outbox_settings

    orders = outbox_settings(settings)
    if not (orders.enabled and orders.deliver_in_app):
        return None
    stop = threading.Event()
    OutboxWorker(app.state.store.sessions, orders).start(stop)
    console.print(f"work orders: delivered from here to {redact(orders.url)} (send: {orders.send})", highlight=False)
    return stop


def _check_listen(host: str, port: int) -> None:
    """One line, exit 2, for an address uvicorn would answer with a traceback (a port past 65535, a host that
    does not resolve)."""
    import socket

    if not 0 <= port <= 65535:
        fail(f"--port {port}: a TCP port is 0-65535")
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        fail(f"--host {host}: not an address of this machine or a name that resolves ({exc})")


def _password(stdin: bool) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\n")
    return typer.prompt("password", hide_input=True, confirmation_prompt=True)


@users_app.command("add")
@one_line_errors
def users_add(
    username: str,
    role: Annotated[str, typer.Option(help="analyst (reviews cases) or admin (also manages users).")] = "analyst",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    db: DbUrl = None,
) -> None:
    """Add a user; asks for the password twice (or reads one line with --password-stdin).

    Example: streetwatch users add alice --role admin
    """
    from streetwatch.cases.store import CaseStore
    from streetwatch.review.users import add_user

    store = CaseStore(db_url(data_dir, db))
    password = _password(password_stdin)
    with store.sessions.begin() as ses:
        add_user(ses, username, password, role, actor="cli")
    console.print(f"added {username} ({role})")


@users_app.command("list")
@one_line_errors
def users_list(data_dir: DataDir = DEFAULT_DATA_DIR, db: DbUrl = None) -> None:
    """List users, their roles and whether they are disabled.

    Example: streetwatch users list
    """
    from streetwatch.cases.store import CaseStore
    from streetwatch.review.queries import iso
    from streetwatch.review.users import list_users

    store = CaseStore(db_url(data_dir, db))
    table = Table(title="users")
    for col in ("user", "role", "state", "created", "last log-in (UTC)"):
        table.add_column(col)
    with store.session() as ses:
        for u in list_users(ses):
            table.add_row(u.username, u.role, "disabled" if u.disabled else "active", iso(u.created_at),
                          iso(u.last_login_at))
    console.print(table)


def _toggle(username: str, disabled: bool, data_dir: Path, db: str | None) -> None:
    from streetwatch.cases.store import CaseStore
    from streetwatch.review.users import set_disabled

    store = CaseStore(db_url(data_dir, db))
    with store.sessions.begin() as ses:
        set_disabled(ses, username, disabled, actor="cli")
    console.print(f"{username}: {'disabled (logged out everywhere)' if disabled else 'enabled'}")


@users_app.command("disable")
@one_line_errors
def users_disable(username: str, data_dir: DataDir = DEFAULT_DATA_DIR, db: DbUrl = None) -> None:
    """Disable a user: they cannot log in, and their open sessions end now.

    Example: streetwatch users disable alice
    """
    _toggle(username, True, data_dir, db)


@users_app.command("enable")
@one_line_errors
def users_enable(username: str, data_dir: DataDir = DEFAULT_DATA_DIR, db: DbUrl = None) -> None:
    """Enable a disabled user again.

    Example: streetwatch users enable alice
    """
    _toggle(username, False, data_dir, db)


def _default_classes() -> list[str]:
    """The bundled model's classes, read from its weights, so reviewed cases evaluate against it directly."""
    from streetwatch.detector.model import class_names
    from streetwatch.detector.model_registry import BUNDLED_MODEL

    return class_names(BUNDLED_MODEL) or []


@one_line_errors
def dataset_from_reviews(
    out: Annotated[Path | None, typer.Option(help="Source folder to write (default: DATA_DIR/reviews).")] = None,
    frames_per_case: Annotated[int, typer.Option(min=1, max=50, help="At most this many frames per case (every "
                                                                      "corrected frame is used).")] = 3,
    classes: Annotated[str | None, typer.Option(help="Class names in id order, comma-separated (default: the "
                                                     "bundled model's, read from its weights).")] = None,
    val_fraction: Annotated[float, typer.Option(min=0.0, max=0.9, help="Share of places held out for val.")] = 0.2,
    test_fraction: Annotated[float, typer.Option(min=0.0, max=0.9, help="Share of places held out for test.")] = 0.2,
    place_radius_m: Annotated[float, typer.Option(min=0.0, help="Cases this close on the ground are one place "
                                                                "(as are cases of one camera view).")] = 50.0,
    licence: Annotated[str | None, typer.Option(help="Licence of the evidence, recorded with every image (default: "
                                                     "the bureau's own footage, internal).")] = None,
    evidence_dir: EvidenceOpt = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    db: DbUrl = None,
) -> None:
    """Export reviewed cases and box corrections as a YOLO dataset split by place: confirmed, drawn and re-classed
    boxes are labels, boxes marked wrong and false detections background.

    Example: streetwatch dataset from-reviews --out streetwatch-data/reviews
    """
    from streetwatch.cases.store import CaseStore
    from streetwatch.training.from_reviews import DEFAULT_LICENCE, export_reviews

    names = [c.strip() for c in classes.split(",") if c.strip()] if classes else _default_classes()
    out = out or data_dir / "reviews"
    manifest = export_reviews(CaseStore(db_url(data_dir, db)), evidence_dir or data_dir / "evidence", out,
                              frames_per_case=frames_per_case, classes=names, val_fraction=val_fraction,
                              test_fraction=test_fraction, place_radius_m=place_radius_m, licence=licence or DEFAULT_LICENCE)
    cases, images = manifest["cases"], manifest["images"]
    console.print(f"{cases['positive']} confirmed case(s) -> {manifest['frames']['positive']} labelled frame(s); "
                  f"{cases['hard_negative']} false detection(s) -> {manifest['frames']['hard_negative']} hard "
                  f"negative(s); {len(manifest['places'])} place(s): train {images['train']}, val {images['val']}, "
                  f"test {images['test']} image(s)")
    console.print(f"corrections: {manifest['drawn_boxes']} box(es) drawn, {manifest['class_fixes']} class fix(es), "
                  f"{manifest['marked_wrong']} marked wrong; {manifest['background_images']} background image(s)")
    if manifest["source_frames"]["frames"]:
        console.print(f"{manifest['source_frames']['frames']} corrected frame(s) of "
                      f"{len(manifest['source_frames']['runs'])} source(s), the model's boxes left untouched kept as "
                      "labels")
    if cases["rejected_not_used"]:
        console.print("rejected for other reasons, not used: "
                      + ", ".join(f"{k} {v}" for k, v in cases["rejected_not_used"].items()))
    if manifest["unreviewed_with_corrections"]:
        console.print(f"[yellow]not used:[/] corrections on {len(manifest['unreviewed_with_corrections'])} case(s) "
                      "nobody has confirmed or rejected yet")
    for line in manifest["skipped"][:10]:
        console.print(f"[yellow]skipped:[/] {line}")
    if not images["val"] or not images["train"]:
        console.print("[yellow]note:[/] one split is empty (few reviewed places): fine inside a recipe with other "
                      "sources, not enough to evaluate on the reviewed cases alone")
    console.print(f"dataset: {out / 'data.yaml'}   provenance: {out / 'provenance.json'}   "
                  f"add it to a recipe: see {out / 'README.md'}")
