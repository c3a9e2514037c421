"""A recorded drone flight replayed live: its video through the real RTSP server, its SRT telemetry as DJI Cloud API
OSD messages at the real rate through the real Mosquitto (127.0.0.1:1883), into the daemon with the real model.

The flight is tests/flyover.py's virtual nadir flight over real aerial vendor chips (every frame a keyframe, so a
client joining the "live" stream starts exactly where the flight is now, `rtsp_server.py --live-epoch`). `detect` on
the recorded file is the reference: the live daemon must place the same stalls within 2 m, and when telemetry and
video each drop out for 10 s mid-flight it must place nothing wrongly, resume by itself and say what happened.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from streetwatch.batch.runner import Pipeline, PipelineSettings
from streetwatch.benchmarks.drone_replay import TelemetryReplay
from streetwatch.camera_daemon.config import parse_daemon_config
from streetwatch.camera_daemon.service import Daemon
from streetwatch.cases import tables as t
from streetwatch.cases.drone_tracks import flights_geojson
from streetwatch.cases.store import CaseStore
from streetwatch.detector.geo import haversine_m
from streetwatch.detector.inference import DEFAULT_MODEL
from streetwatch.detector.settings import AnalysisSettings
from streetwatch.streams.discover import discover
from streetwatch.streams.drone import DroneSettings, drone_hooks
from streetwatch.streams.video import Sampling
from tests import flyover
from tests.conftest import shared_path
from tests.daemon_helpers import TOKEN, http_get
from tests.servers.fixtures import free_port, needs_rtsp, rtsp_server, wait_for

pytestmark = [pytest.mark.slow, needs_rtsp]

BROKER = ("127.0.0.1", 1883)
FLIGHT_S = 30.0


def broker_up() -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(BROKER) == 0


@pytest.fixture(scope="module")
def flight(tmp_path_factory):
    """The flight file, its stalls, and `detect`'s cases of it (the reference)."""
    if not broker_up():
        if os.environ.get("CI"):
            pytest.fail("no MQTT broker on 127.0.0.1:1883: CI must start Mosquitto (tests/run.sh)")
        pytest.skip("no MQTT broker on 127.0.0.1:1883 (tests/run.sh starts Mosquitto)")
    chips = flyover.pick_chips(shared_path("data", "vendors_bogota_aerial", "valid"))
    mosaic, stalls = flyover.build_mosaic(chips)
    root = tmp_path_factory.mktemp("live-drone")
    video = flyover.fly(mosaic, root / "flight.mp4", seconds=FLIGHT_S, gop_s=0.2)
    store = CaseStore(f"sqlite:///{root / 'detect.sqlite'}")
    settings = PipelineSettings(analysis=AnalysisSettings(model=DEFAULT_MODEL), sampling=Sampling(mode="fps", fps=1),
                                evidence_dir=root / "evidence")
    result = Pipeline(settings, store).run(discover([video])[0], hooks_for=lambda i: drone_hooks(i, DroneSettings()))[0]
    assert result.status == "done", result.error
    return video, stalls, cases(store)


def cases(store: CaseStore) -> list[tuple[str, float, float]]:
    with store.session() as ses:
        return [(c.problem_type, c.lat, c.lon) for c in ses.scalars(select(t.Case).order_by(t.Case.id))]


def daemon_config(tmp_path: Path, url: str, topic: str, max_gap_s: float = 1.0):
    camera = {"id": "dock1", "url": url, "model": str(DEFAULT_MODEL), "analysis_fps": 1, "max_frame_age_s": 5,
              "open_timeout_s": 2, "read_timeout_s": 2, "stall_timeout_s": 2, "backoff_initial_s": 0.2,
              "backoff_max_s": 1, "watchdog_s": 10,
              "drone": {"telemetry": {"broker": f"mqtt://{BROKER[0]}:{BROKER[1]}", "topic": topic,
                                      "max_gap_s": max_gap_s},
                        "focal_mm": flyover.FOCAL_35MM}}
    return parse_daemon_config({"data_dir": str(tmp_path / "data"), "http": {"port": 0, "token": TOKEN},
                                "shutdown_timeout_s": 10, "cameras": [camera]}, base=tmp_path)


def fly_live(tmp_path: Path, video: Path, *, telemetry_drop=None, video_drop=None) -> tuple[list, dict, list]:
    """Replay the flight live through the daemon; (cases, the last /status, /status snapshots each second)."""
    topic = f"thing/product/TEST{uuid.uuid4().hex[:8]}/osd"
    db = f"sqlite:///{tmp_path / 'live.sqlite'}"

    port = free_port()
    daemon = Daemon(daemon_config(tmp_path, f"rtsp://127.0.0.1:{port}/dock1", topic), db_url=db).start()  # model loaded
    statuses = []
    try:
        epoch = time.time() + 0.5
        replay = TelemetryReplay(video.with_suffix(".SRT"), f"mqtt://{BROKER[0]}:{BROKER[1]}", topic, epoch,
                                 drop=telemetry_drop)
        replay.start()
        server = rtsp_server({"/dock1": video}, port=port, live_epoch=epoch)
        handle = server.__enter__()
        try:
            end = epoch + FLIGHT_S - 0.5
            while time.time() < end:
                if video_drop and handle is not None and time.time() >= epoch + video_drop[0]:
                    server.__exit__(None, None, None)  # the dock's video is gone ...
                    handle = None
                    time.sleep(max(0.0, epoch + video_drop[1] - time.time()))
                    server = rtsp_server({"/dock1": video}, port=port, live_epoch=epoch)  # ... and back, live
                    handle = server.__enter__()
                    video_drop = None
                statuses.append((time.time() - epoch, json.loads(http_get(daemon.http_port, "/status")[1])))
                time.sleep(1.0)
        finally:
            if handle is not None:
                server.__exit__(None, None, None)
            replay.stop.set()
            replay.join(5)
        last = json.loads(http_get(daemon.http_port, "/status")[1])
    finally:
        daemon.stop()
    store = CaseStore(db)
    assert wait_for(lambda: all(f["properties"]["ended_at"] for f in flights_geojson(store)["features"]), 10)
    return cases(store), last, statuses, flights_geojson(store)["features"]


def nearest(case, others) -> float:
    return min((haversine_m(case[1], case[2], o[1], o[2]) for o in others if o[0] == case[0]), default=float("inf"))


@pytest.mark.timeout(240)
def test_a_live_flight_gives_the_same_cases_as_detect_on_its_recording(tmp_path, flight):
    video, stalls, reference = flight
    found, status, _, flights = fly_live(tmp_path, video)
    tel = status["cameras"]["dock1"]["telemetry"]
    print("detect:", reference, "\nlive:", found, "\ntelemetry:", tel)
    assert reference and found
    assert tel["frames_posed"] >= 20 and tel["problems"] == {}
    assert 0.0 <= tel["telemetry_delay_s"] < 0.5  # published at the moment each describes, through a local broker
    off = [(c, round(nearest(c, reference), 2)) for c in found]
    assert all(d <= 2.0 for _, d in off), off  # every live case within 2 m of detect's case of that place
    missed = [(c, round(nearest(c, found), 2)) for c in reference if nearest(c, found) > 2.0]
    assert not missed, missed  # and every case of detect has its live twin
    assert len(found) == len(reference)
    # the flight, for the map: one line along the flown track, with every case it found
    (flight,) = flights
    line = flight["geometry"]["coordinates"]
    flown = haversine_m(line[0][1], line[0][0], line[-1][1], line[-1][0])
    assert flight["geometry"]["type"] == "LineString" and 60 <= flown <= 95, flown  # ~3 m/s for most of 30 s
    assert len(flight["properties"]["case_ids"]) == len(found)


@pytest.mark.timeout(240)
def test_telemetry_and_video_dropping_out_mid_flight_place_nothing_wrongly(tmp_path, flight):
    video, stalls, reference = flight
    found, status, statuses, _ = fly_live(tmp_path, video, telemetry_drop=(5.0, 15.0), video_drop=(17.0, 27.0))
    cam = status["cameras"]["dock1"]
    tel = cam["telemetry"]
    print("live:", found, "\ntelemetry:", tel, "\ncamera:", {k: v for k, v in cam.items() if k != "telemetry"})
    # nothing placed wrongly: every case is within 2 m of a real stall
    off = [(c, min(haversine_m(c[1], c[2], s.lat, s.lon) for s in stalls)) for c in found]
    assert all(d <= 2.0 + 1.0 for _, d in off), off
    assert all(nearest(c, reference) <= 2.0 for c in found), [(c, nearest(c, reference)) for c in found]
    # the status said what happened: frames without a position during the telemetry gap, a reconnect for the video
    during = [s for at, s in statuses if 8.0 <= at <= 14.0]
    assert any(s["cameras"]["dock1"]["telemetry"]["frames_without_pose"] for s in during), during[-1:]
    assert sum(tel["frames_without_pose"].values()) >= 5
    assert cam["frames_dropped"]["no_pose"] == sum(tel["frames_without_pose"].values())
    assert cam["reconnects"] >= 1
    # and it resumed by itself: frames posed again after each dropout
    posed = [(at, s["cameras"]["dock1"]["telemetry"]["frames_posed"]) for at, s in statuses]
    after_telemetry = [n for at, n in posed if 15.5 <= at <= 17.0]
    after_video = [n for at, n in posed if at >= 28.0]
    assert after_telemetry and after_video and after_video[-1] > after_telemetry[0] > posed[0][1], posed
