"""`streetwatch fleet status`: which daemon host holds which camera of a fleet, with its lease token and expiry
(`cases.leases`, docs/operations.md "Camera fleet")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from streetwatch.commands.common import DbUrl, console, fail, one_line_errors

app = typer.Typer(help="A camera fleet: daemon hosts sharing one camera list on one PostgreSQL.", no_args_is_help=True)


@app.command("status")
@one_line_errors
def status(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="The fleet's cameras.yaml (its database and "
                                                                       "lease_ttl_s); --db wins over it.")] = None,
    db: DbUrl = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object: hosts, cameras.")] = False,
) -> None:
    """Hosts (capacity, last heartbeat, cameras held) and every camera's holder, token and lease expiry.

    Example: streetwatch fleet status --config /etc/streetwatch/cameras.yaml
    """
    from streetwatch.camera_daemon.config import load_daemon_config
    from streetwatch.camera_daemon.config_fields import FleetSettings
    from streetwatch.cases import leases
    from streetwatch.cases.store import CaseStore, quote_password

    cfg = load_daemon_config(config) if config is not None else None
    url = db or (cfg.database if cfg else None)
    if not url or not url.startswith("postgresql"):
        fail("a fleet lives in PostgreSQL: give --db (or STREETWATCH_DB), or --config with a postgresql database")
    ttl = (cfg.fleet if cfg else FleetSettings()).lease_ttl_s
    store = CaseStore(quote_password(url))
    with store.engine.begin() as conn:
        view = leases.fleet_view(conn)
    store.engine.dispose()
    listed = {c.id for c in cfg.cameras if c.enabled} if cfg else None
    owners = view.owners()
    live = {h.host for h in view.live_hosts(ttl)}
    if as_json:
        console.print_json(json.dumps({
            "hosts": [{"host": h.host, "instance": h.instance, "capacity": h.capacity, "live": h.host in live,
                       "heartbeat_age_s": round(h.heartbeat_age_s, 1),
                       "cameras": sorted(c for c, o in owners.items() if o == h.host)} for h in view.hosts],
            "cameras": [{"camera": r.camera_id, "host": owners.get(r.camera_id), "token": r.token,
                         "expires_in_s": None if r.expires_in_s is None else round(r.expires_in_s, 1)}
                        for r in view.leases if listed is None or r.camera_id in listed]}))
        return
    for h in view.hosts:
        held = sorted(c for c, o in owners.items() if o == h.host)
        state = "live" if h.host in live else "silent"
        console.print(escape(f"{h.host}  {state}, capacity {h.capacity}, heartbeat {h.heartbeat_age_s:.1f} s ago, "
                             f"{len(held)} cameras: {', '.join(held) or '-'}"), highlight=False)
    console.print("")
    for r in view.leases:
        if listed is not None and r.camera_id not in listed:
            continue
        holder = owners.get(r.camera_id)
        expiry = "-" if r.expires_in_s is None else f"{r.expires_in_s:+.1f} s"
        console.print(escape(f"{r.camera_id:24} {holder or '(nobody)':16} token {r.token:<6} expires {expiry}"),
                      highlight=False)
    unheld = sorted((listed or set()) - {c for c, o in owners.items() if o})
    if unheld:
        console.print(escape(f"not analysed now: {', '.join(unheld)}"), highlight=False)
        raise typer.Exit(1)
