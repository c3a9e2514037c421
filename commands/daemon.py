"""`streetwatch daemon`, `streetwatch config check` and `streetwatch bench daemon`: the live-camera service (and
`config check` of a bureau's code table)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.markup import escape

from streetwatch.commands.common import DbUrl, console, err_console, one_line_errors, quiet_libraries

config_app = typer.Typer(help="Check camera daemon configuration files and code tables.", no_args_is_help=True)


@one_line_errors
def daemon(
    config: Annotated[Path, typer.Option("--config", "-c", help="Cameras YAML (see examples/cameras.yaml).")],
    action: Annotated[Literal["run", "reload"], typer.Argument(
        help="run (default): run the daemon. reload: make the running daemon re-read --config (SIGHUP to the pid in "
             "its data_dir's daemon.pid) and print the outcome.")] = "run",
    db: DbUrl = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
    log_format: Annotated[Literal["json", "text"], typer.Option(help="json: one JSON object per line.")] = "json",
) -> None:
    """Run the camera daemon until SIGTERM/SIGINT; SIGHUP (or `streetwatch daemon reload`) re-reads the config file.

    Example: streetwatch daemon --config /etc/streetwatch/cameras.yaml --db postgresql+psycopg://sw@db/streetwatch
    """
    from streetwatch.detector.errors import StreetwatchError

    try:
        if action == "reload":
            raise typer.Exit(_reload(config))
        quiet_libraries()
        from streetwatch.camera_daemon.ops import setup_logging
        from streetwatch.camera_daemon.process import serve

        setup_logging(log_level, log_format)
        code = serve(config, db)
    except StreetwatchError as exc:  # printed here: rich markup would eat "cameras.0[gate-east]"
        for line in str(exc).splitlines():  # never a URL's credentials: config errors do not quote URLs
            err_console.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


def _reload(config: Path) -> int:
    """`streetwatch daemon reload`: 0 when the daemon took the file (or cannot be asked), 1 when it refused it."""
    from streetwatch.camera_daemon.process import reload_running

    sent = reload_running(config)
    if sent.result is None:
        console.print(f"sent SIGHUP to the daemon (pid {sent.pid}); its /status or log says how the reload went",
                      highlight=False)
        return 0
    if sent.result.get("ok"):
        console.print(f"daemon (pid {sent.pid}) reloaded {config}", highlight=False)
        return 0
    err_console.print(f"[bold red]error:[/] reload refused, the daemon keeps its configuration: "
                      f"{escape(str(sent.result.get('error')))}", highlight=False, soft_wrap=True)
    return 1


def _print_errors(exc: Exception) -> None:
    for line in str(exc).splitlines():
        err_console.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)


def _check_code_table(file: Path, taxonomy: Path | None) -> None:
    """`config check bureau-codes.csv`: the table as the review app and `cases export --codes` would load it, and
    what it leaves open for the taxonomy (types with no row, rows naming no type of it)."""
    from streetwatch.detector.codes import profile_warnings, read_code_table
    from streetwatch.detector.config import load_taxonomy
    from streetwatch.detector.errors import ConfigError

    try:
        profile = read_code_table(file)
        tax = load_taxonomy(taxonomy)
    except ConfigError as exc:
        _print_errors(exc)
        raise typer.Exit(2) from None
    warnings = [*profile.warnings, *profile_warnings(profile, tax)]
    for warning in warnings:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    mapped = [e for e in profile.entries if e.problem_type]
    for e in mapped:
        line = f"{e.problem_type}  {e.code or '(no code)'}  {e.name}" + (f"  [{e.category}]" if e.category else "")
        console.print(escape(line), highlight=False, soft_wrap=True)
    console.print(escape(f"{file}: OK ({len(profile.entries)} codes, {len(mapped)} mapped to problem types, "
                         f"{len(warnings)} warnings)"), highlight=False)


def _check_grids(file: Path) -> None:
    """`config check grids.geojson`: the unit grids as `cases regrid --grids` would load them (docs/grids.md)."""
    from streetwatch.cases.grid_file import read_grids
    from streetwatch.detector.errors import ConfigError

    try:
        grids = read_grids(file)
    except ConfigError as exc:
        _print_errors(exc)
        raise typer.Exit(2) from None
    for warning in grids.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    for g in grids.grids:
        console.print(escape(f"{g.code}  {g.name or '(no name)'}  head {g.head or '(none)'}"), highlight=False,
                      soft_wrap=True)
    heads = len({g.head for g in grids.grids if g.head})
    console.print(escape(f"{file}: OK ({len(grids.grids)} grids, {heads} grid heads, {len(grids.warnings)} warnings)"),
                  highlight=False)


GRID_SUFFIXES = (".geojson", ".json", ".shp")


@config_app.command("check")
def config_check(
    file: Annotated[Path, typer.Argument(help="Cameras YAML, a code table (.csv) or unit grids (.geojson) to check.")],
    taxonomy: Annotated[Path | None, typer.Option(
        help="For a code table: the taxonomy whose problem types it maps (default: the bundled one).")] = None,
) -> None:
    """Validate a cameras file: every problem printed as `FILE: key.path: message`; exit 2 if any. A .csv file
    is checked as a bureau's code table (`FILE: line N: field: message`, docs/codes.md), a .geojson file as its
    unit grids (`FILE: feature N: field: message`; overlaps warned, docs/grids.md).

    Example: streetwatch config check cameras.yaml; streetwatch config check bureau-codes.csv
    """
    from streetwatch.camera_daemon.config import check_daemon_config
    from streetwatch.detector.errors import ConfigError
    from streetwatch.streams.live import redact_url, remember_secrets

    if file.suffix.lower() == ".csv":
        _check_code_table(file, taxonomy)
        return
    if file.suffix.lower() in GRID_SUFFIXES:
        _check_grids(file)
        return
    try:
        cfg, warnings = check_daemon_config(file)
    except ConfigError as exc:
        _print_errors(exc)
        raise typer.Exit(2) from None
    for url in (cfg.database or "", *(cam.url for cam in cfg.cameras)):
        remember_secrets(url)  # a password with a space is only known for one once its whole URL was seen
    for warning in warnings:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    for cam in cfg.cameras:  # one line per camera (a table would cut the URL short)
        ground = "calibrated" if cam.calibration else ("location" if cam.location else "no ground model")
        if cam.drone is not None:  # a live drone: placed by its telemetry
            tel = cam.drone.telemetry
            ground = (f"drone: {tel.mapping.kind} telemetry from {redact_url(tel.broker)} {tel.topic}, "
                      f"offset {tel.offset_s:g} s, max gap {tel.max_gap_s:g} s")
        line = (f"{cam.id}{'' if cam.enabled else ' (disabled)'}  {redact_url(cam.url)}  {cam.analysis_fps:g} frames/s"
                f"  model {cam.model_path().name}  {len(cam.zones)} zones  {ground}")
        console.print(escape(line), highlight=False, soft_wrap=True)
    console.print(escape(f"{file}: OK ({len(cfg.cameras)} cameras, {len(warnings)} warnings)"), highlight=False)


@one_line_errors
def bench_daemon(
    cameras: Annotated[list[int] | None, typer.Option(
        "--cameras", "-n", help="Camera counts to try, in order (default 4 8 16 24 32 40 48).")] = None,
    seconds: Annotated[float, typer.Option(help="Measured seconds per step (after warm-up).")] = 20,
    fps: Annotated[float, typer.Option(help="Analysis frames/s per camera.")] = 1.0,
    model: Annotated[list[Path] | None, typer.Option(
        help="Model(s) to measure side by side (default: the bundled model the daemon runs by default).")] = None,
    backend: Annotated[list[str] | None, typer.Option(
        help="Backend per --model, in order (auto | onnx | openvino | pytorch; default auto).")] = None,
    workdir: Annotated[Path, typer.Option(help="Clips, database and evidence go here.")] = Path(
        "streetwatch-data/bench-daemon"),
    keep_going: Annotated[bool, typer.Option("--keep-going", help="Try every count even after one fails.")] = False,
    drone_clip: Annotated[Path | None, typer.Option(
        help="A recorded drone clip (its .SRT beside it) flown live beside the cameras: video over RTSP, telemetry "
             "as DJI OSD over MQTT; its frame-to-case latency is reported apart.")] = None,
    broker: Annotated[str, typer.Option(help="MQTT broker for --drone-clip's telemetry.")] = "mqtt://127.0.0.1:1883",
    decode: Annotated[list[str] | None, typer.Option(
        help="The cameras' decode setting(s) to measure side by side: auto (keyframes alone when they suffice) "
             "| all (every frame). Default auto.")] = None,
    gop: Annotated[float, typer.Option(help="Seconds between the simulated cameras' keyframes.")] = 1.0,
) -> None:
    """N simulated 640x360 cameras over local RTSP, each analysed at --fps; the largest N the host sustains.

    Example: streetwatch bench daemon -n 8 -n 16 -n 24 --seconds 20
             streetwatch bench daemon -n 4 --drone-clip flight.mp4 --seconds 40
    """
    quiet_libraries()
    from streetwatch.benchmarks.bench_daemon import bench_daemon as run
    from streetwatch.detector.inference import DEFAULT_MODEL

    models = list(model or [DEFAULT_MODEL])
    backends = list(backend or [])
    if len(backends) > len(models):
        raise typer.BadParameter("give at most one --backend per --model")
    pairs = tuple((m, backends[i] if i < len(backends) else "auto") for i, m in enumerate(models))
    if bad := [d for d in decode or [] if d not in ("auto", "all")]:
        raise typer.BadParameter(f"--decode {bad[0]}: expected auto or all")
    drone = None
    if drone_clip is not None:
        from streetwatch.benchmarks.bench_daemon import DroneFlight
        from streetwatch.streams.telemetry import find_sidecar

        srt = find_sidecar(drone_clip)
        if srt is None:
            raise typer.BadParameter(f"{drone_clip}: no telemetry sidecar (.SRT or .csv) beside it")
        drone = DroneFlight(drone_clip, Path(srt), broker)
    text = run(counts=tuple(cameras or (4, 8, 16, 24, 32, 40, 48)), seconds=seconds, fps=fps, models=pairs,
               workdir=workdir, stop_at_first_failure=not keep_going, drone=drone,
               decodes=tuple(decode or ["auto"]), gop_s=gop)
    console.print(text, highlight=False, soft_wrap=True)
