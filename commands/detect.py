"""`streetwatch detect`: batch runs over recorded footage."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from streetwatch.commands.common import (
    DEFAULT_DATA_DIR,
    DataDir,
    DbUrl,
    console,
    err_console,
    one_line_errors,
    open_store,
    parse_settings,
    parse_when,
    quiet_libraries,
)
from streetwatch.commands.detect_report import print_summary, write_report


@one_line_errors
def detect(
    paths: Annotated[list[Path] | None, typer.Argument(help="Video/image files, folders (recursive) or globs.")] = None,
    sample: Annotated[bool, typer.Option("--sample", help="Build and analyse the bundled sample clip.")] = False,
    fps: Annotated[float, typer.Option(help="Frames analysed per second of footage.")] = 0.5,
    every: Annotated[int | None, typer.Option(help="Analyse every Nth frame instead of --fps.")] = None,
    keyframes: Annotated[bool, typer.Option("--keyframes", help="Analyse every keyframe, nothing else.")] = False,
    all_frames: Annotated[bool, typer.Option("--all-frames", help="Analyse every frame (slow).")] = False,
    model: Annotated[Path | None, typer.Option(help="Ultralytics weights: .pt, .onnx or OpenVINO folder.")] = None,
    backend: Annotated[str, typer.Option(help="auto | pytorch | onnx | openvino")] = "auto",
    imgsz: Annotated[int, typer.Option(help="Long side of the model input, pixels.")] = 640,
    taxonomy: Annotated[Path | None, typer.Option(help="Problem-type taxonomy YAML.")] = None,
    zones: Annotated[Path | None, typer.Option(help="Zones YAML (no-parking, no-vending, approved spots...).")] = None,
    camera: Annotated[str | None, typer.Option(help="Camera id for all files (default: each file's folder).")] = None,
    start_time: Annotated[str | None, typer.Option(help="Wall time of the first frame, ISO 8601.")] = None,
    timezone: Annotated[str | None, typer.Option(
        help="IANA time zone (e.g. Asia/Shanghai) of times given without one: file names (cam_20261128_080000.mp4), "
             "EXIF, --start-time. Default: the camera's in --cameras, else the zones file's, else UTC.")] = None,
    rerun: Annotated[bool, typer.Option("--rerun", help="Process files already done with these settings.")] = False,
    telemetry: Annotated[Path | None, typer.Option(help="Drone telemetry (DJI .SRT or CSV) for a single video; "
                                                        "default: flight.SRT beside flight.MP4.")] = None,
    drone_camera: Annotated[str | None, typer.Option(help="Drone model for the lens preset, e.g. 'mavic 3'.")] = None,
    hfov: Annotated[float | None, typer.Option(help="Horizontal field of view of the drone camera, degrees.")] = None,
    ground_elevation: Annotated[float | None, typer.Option(
        help="Street level above sea level, metres (default: the take-off point's level).")] = None,
    explain: Annotated[bool, typer.Option("--explain", help="Per file: detections by class, tracks, and for "
                                                            "every track that did not become a sighting, the rule "
                                                            "that stopped it.")] = False,
    explain_dir: Annotated[Path | None, typer.Option(help="Write annotated frames (boxes, zones, why held back) "
                                                          "here.")] = None,
    report: Annotated[Path | None, typer.Option(help="Write the run's per-file summary as JSON here.")] = None,
    location: Annotated[str | None, typer.Option(help="Where the camera stands, 'LAT,LON' (WGS84): its cases "
                                                      "appear on the map.")] = None,
    cameras: Annotated[Path | None, typer.Option(help="A cameras.yaml (the daemon's): locations by camera id.")] = None,
    ray: Annotated[str | None, typer.Option("--ray", help="Run the batch on the Ray cluster at this address: auto, "
                                            "HOST:PORT or ray://HOST:PORT (needs --db PostgreSQL and a shared "
                                            "--data-dir; docs/cluster.md).")] = None,
    redact: Annotated[bool, typer.Option("--redact/--no-redact", help="Write a redacted copy (faces, plates) of "
                                         "every evidence image; only that copy leaves streetwatch.")] = True,
    privacy_models: Annotated[Path | None, typer.Option(help="Folder with the YuNet face and LPD-YuNet plate "
                                                        "models (default: $STREETWATCH_PRIVACY_MODELS, else "
                                                        "$STREETWATCH_SHARED/weights/privacy).")] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    db: DbUrl = None,
) -> None:
    """Find street problems in recorded footage and file one case per problem per place.

    Example: streetwatch detect footage/cam01/ --zones zones.yaml --fps 0.5
    """
    quiet_libraries()
    if not 0 < fps < float("inf"):  # 0 used to mean "every frame" without a word; --all-frames says so
        from streetwatch.commands.common import fail

        fail(f"--fps {fps:g}: must be more than 0 frames per second (every frame: --all-frames)")
    if ray is not None:  # Ray missing, or a database only one host sees: one line, before anything runs
        from streetwatch.batch.cluster import ClusterError, require_cluster
        from streetwatch.commands.common import fail

        try:
            require_cluster(db)
        except ClusterError as exc:
            fail(str(exc))  # fail() escapes markup: the hint holds "[cluster]"
    from streetwatch.batch.runner import Pipeline, PipelineSettings
    from streetwatch.detector.privacy import PrivacySettings
    from streetwatch.detector.settings import AnalysisSettings
    from streetwatch.streams.discover import discover
    from streetwatch.streams.sample import build_sample
    from streetwatch.streams.video import Sampling

    inputs = list(paths or [])
    if sample:
        clip, sample_zones = build_sample(data_dir / "sample")
        inputs.append(clip)
        zones = zones or sample_zones
    if not inputs:
        raise typer.BadParameter("give footage paths, or --sample for the bundled sample clip")
    _start = parse_when(start_time, "--start-time")
    if timezone is not None:
        from streetwatch.detector.config import check_timezone

        try:
            check_timezone(timezone)
        except ValueError as exc:
            raise typer.BadParameter(f"--timezone: {exc}; use an IANA name such as Asia/Shanghai or UTC") from None
    if camera is not None:
        from streetwatch.detector.ids import check_camera_id

        check_camera_id(camera, "--camera")
    mode = "all" if all_frames else "keyframes" if keyframes else "every" if every else "auto"
    from streetwatch.detector.model_registry import current_model

    # no --model: the current promoted model of THIS data folder, else the bundled one
    analysis = parse_settings(AnalysisSettings, {"model": model or current_model(data_dir), "backend": backend,
                                                 "imgsz": imgsz,
                                                 "taxonomy": taxonomy})
    settings = PipelineSettings(
        analysis=analysis, sampling=Sampling(mode=mode, fps=fps, every=every or 1),
        zones_path=zones, evidence_dir=data_dir / "evidence", camera=camera,
        start_time=_start and _start.timestamp(), rerun=rerun, explain_dir=explain_dir,
        location=parse_location(location), camera_locations=camera_locations(cameras), timezone=timezone,
        privacy=parse_settings(PrivacySettings, {"redact": redact, "models_dir": privacy_models}))
    from streetwatch.detector.config import load_zones
    from streetwatch.detector.settings import resolve_taxonomy

    resolve_taxonomy(analysis)
    zone_file = load_zones(zones)  # a malformed config stops here, before any file is touched
    settings.camera_timezones, settings.cameras_timezone = camera_timezones(cameras)
    if _start is not None and _naive(start_time):
        from streetwatch.streams.local_time import resolve_zone

        # no zone written: read it where the camera is, as file names are (streams.local_time)
        zone = resolve_zone(camera or "", timezone, settings.camera_timezones,
                            zone_file.timezone if "timezone" in zone_file.model_fields_set else None,
                            settings.cameras_timezone)
        settings.start_time = zone.unix(_start.replace(tzinfo=None))
    items, problems = discover(inputs)
    for problem in problems:
        err_console.print(f"[red]skipped:[/] {problem}", highlight=False)
    from streetwatch.detector.zones import zone_warnings

    for warning in zone_warnings(zone_file.zones, {camera or item.camera_id for item in items} if items else None):
        err_console.print(f"[yellow]warning:[/] {escape(str(zones))}: {escape(warning)}", highlight=False,
                          soft_wrap=True)
    if telemetry and len(items) != 1:
        raise typer.BadParameter("--telemetry names the sidecar of ONE video; put flight.SRT beside flight.MP4 instead")
    store = open_store(data_dir, db)
    if ray is not None:  # the same batch on a Ray cluster (batch.cluster), reported as a local run reports it
        from streetwatch.batch.cluster import run_on_cluster
        from streetwatch.streams.drone import DroneSettings

        outcome = run_on_cluster(ray, items, settings, store, DroneSettings(
            telemetry=telemetry, camera_model=drone_camera, hfov_deg=hfov, ground_elev_m=ground_elevation),
            console=err_console)
        print_summary(outcome.results, data_dir, store.url, outcome.model_id, explain)
        if report is not None:
            write_report(report, outcome.results, outcome.model_id, problems)
            console.print(f"report: {report}")
        if problems or any(r.status == "failed" for r in outcome.results):
            raise typer.Exit(1)
        return
    pipeline = Pipeline(settings, store)
    err_console.print(f"note: model {analysis.model_path().name} runs on {pipeline.runtime}", highlight=False)
    if pipeline.operating_points:  # scores this model needs above the taxonomy's floors: say which
        points = ", ".join(f"{k} {v:g}" for k, v in pipeline.operating_points.items())
        err_console.print(f"note: the model's own operating points (above the taxonomy's floors): {points}",
                          highlight=False, soft_wrap=True)
    err_console.print(f"note: {escape(pipeline.redactor.describe())}", highlight=False, soft_wrap=True)
    from streetwatch.detector.settings import taxonomy_class_problems

    for line in taxonomy_class_problems(pipeline.taxonomy, pipeline.detector.names.values(),
                                        analysis.model_path().name):  # a typo like `garbge` files nothing
        err_console.print(f"[yellow]warning:[/] {escape(str(taxonomy or 'bundled taxonomy'))}: {escape(line)}",
                          highlight=False, soft_wrap=True)
    from streetwatch.streams.drone import DroneSettings, drone_hooks

    drone = DroneSettings(telemetry=telemetry, camera_model=drone_camera, hfov_deg=hfov,
                          ground_elev_m=ground_elevation)

    def hooks_for(item):
        hooks = drone_hooks(item, drone)
        for warning in hooks.notes.get("warnings", []):
            err_console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
        if hooks.notes.get("assumption"):
            err_console.print(f"[yellow]note:[/] {item.path.name}: {hooks.notes['assumption']}", highlight=False)
        return hooks

    results = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                  TextColumn("cases: {task.fields[cases]}"), TimeElapsedColumn(), console=err_console,
                  transient=False) as progress:
        files_task = progress.add_task("files", total=len(items), rate="", cases=0)
        frame_task = progress.add_task("frames", total=None, rate="", cases="")
        cases_seen: set[int] = set()
        for item in items:
            est = None
            progress.update(frame_task, description=item.path.name[:40], completed=0, total=est)

            started = time.perf_counter()

            def on_progress(res, _index, _started=started, _seen=cases_seen):
                rate = res.frames_analysed / max(1e-6, time.perf_counter() - _started)
                progress.update(frame_task, completed=res.frames_analysed, rate=f"{rate:.1f} frames/s")
                progress.update(files_task, cases=len(_seen | res.case_ids))

            batch = pipeline.run([item], on_progress, hooks_for=hooks_for)
            for res in batch:
                cases_seen |= res.case_ids
                if res.status == "failed":
                    err_console.print(f"[red]failed:[/] {escape(str(res.error))}", highlight=False, soft_wrap=True)
                for warning in res.warnings:
                    err_console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
                if res.status == "skipped":
                    err_console.print(f"skipped: {escape(str(res.path))}: {escape(res.notes.get('reason', ''))}",
                                      highlight=False, soft_wrap=True)
            results.extend(batch)
            progress.update(files_task, advance=1, cases=len(cases_seen))
    print_summary(results, data_dir, store.url, pipeline.model_id, explain)
    if report is not None:
        write_report(report, results, pipeline.model_id, problems, runtime=pipeline.runtime)
        console.print(f"report: {report}")
    if problems or any(r.status == "failed" for r in results):
        raise typer.Exit(1)


def parse_location(text: str | None) -> tuple[float, float] | None:
    """`--location LAT,LON` as numbers in range, or a one-line usage error."""
    if not text:
        return None
    try:
        lat, lon = (float(v) for v in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"--location {text!r}: use LAT,LON in degrees, e.g. 31.2304,121.4737") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise typer.BadParameter(f"--location {text!r}: latitude must lie in -90..90 and longitude in -180..180")
    return lat, lon


def _naive(text: str) -> bool:
    from datetime import datetime

    return datetime.fromisoformat(text).tzinfo is None


def camera_timezones(path: Path | None) -> tuple[dict[str, str], str | None]:
    """Camera id -> its own `timezone` from a daemon cameras.yaml, and the file's top-level one when it sets one."""
    if path is None:
        return {}, None
    from streetwatch.camera_daemon.config import check_daemon_config

    cfg, _warnings = check_daemon_config(path)
    top = cfg.timezone if "timezone" in cfg.model_fields_set else None
    return {c.id: c.timezone for c in cfg.cameras if c.timezone}, top


def camera_locations(path: Path | None) -> dict[str, tuple[float, float]]:
    """Camera id -> (lat, lon) from a daemon cameras.yaml (validated in full, like `config check`)."""
    if path is None:
        return {}
    from streetwatch.camera_daemon.config import check_daemon_config

    cfg, _warnings = check_daemon_config(path)
    return {c.id: (c.location.lat, c.location.lon) for c in cfg.cameras if c.location is not None}

