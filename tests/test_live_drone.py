"""Live drone cameras: the `drone` section of cameras.yaml, `config check`, the telemetry client against a real
Mosquitto (one with a password, started here), and which frame the scheduler hands to the model.

The replay of a whole flight through the daemon is tests/test_live_drone_replay.py (slow)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import time

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from streetwatch.camera_daemon.config import parse_daemon_config
from streetwatch.camera_daemon.drone_config import DroneSection
from streetwatch.camera_daemon.drone_link import DroneLink, zoom_locator
from streetwatch.cli import app
from streetwatch.detector.errors import ConfigError
from streetwatch.detector.frames import CameraPose, Frame
from streetwatch.detector.geo import CameraIntrinsics, haversine_m
from streetwatch.streams.live_pose import PoseBuffer, TelemetrySample
from streetwatch.streams.mqtt_telemetry import MqttTelemetry
from streetwatch.streams.telemetry_mapping import dji_osd_reader
from tests.servers.fixtures import free_port, wait_for

TOPIC = "thing/product/1581F5FKD23A600D0E3B/osd"
DRONE = {"id": "dock1", "url": "rtsp://127.0.0.1:8554/dock1", "analysis_fps": 1,
         "drone": {"telemetry": {"broker": "mqtt://127.0.0.1:1883", "topic": TOPIC}, "focal_mm": 24}}
SECRET = "m0squ1tto-pw"
T0 = 1_733_500_800.0


def osd(t: float, lat: float, lon: float, **gimbal) -> bytes:
    return json.dumps({"tid": "x", "bid": "y", "timestamp": round(t * 1000), "gateway": "DOCK",
                       "data": {"latitude": lat, "longitude": lon, "height": 130.0, "elevation": 100.0,
                                "attitude_head": 0.0, "attitude_pitch": 0.0, "attitude_roll": 0.0,
                                "99-0-0": {"payload_index": "99-0-0", "gimbal_pitch": -90.0, "gimbal_yaw": 0.0,
                                           "gimbal_roll": 0.0, "zoom_factor": 1.0, **gimbal}}}).encode()


# ---- configuration ---------------------------------------------------------------------------------------


def test_a_drone_camera_validates_with_the_dji_default_and_a_json_mapping(monkeypatch):
    monkeypatch.setenv("MQTT_PW", SECRET)
    cam = {**DRONE, "drone": {**DRONE["drone"], "telemetry": {
        "broker": "mqtts://ops:${MQTT_PW}@mqtt.example:8883", "topic": TOPIC, "offset_s": 0.4}}}
    drone = parse_daemon_config({"cameras": [cam]}).cameras[0].drone
    assert drone.telemetry.mapping.kind == "dji_osd" and drone.telemetry.max_gap_s == 2.5
    assert drone.telemetry.broker == f"mqtts://ops:{SECRET}@mqtt.example:8883"
    json_cam = {**DRONE, "drone": {"telemetry": {"broker": "mqtt://h", "topic": "fleet/7/state", "mapping": {
        "kind": "json", "lat": "pos.lat", "lon": "pos.lon", "time": "t", "time_unit": "s"}}}}
    assert parse_daemon_config({"cameras": [json_cam]}).cameras[0].drone.telemetry.mapping.lat == "pos.lat"


@pytest.mark.parametrize(("telemetry", "extra", "fragment"), [
    ({"broker": f"http://ops:{SECRET}@h", "topic": TOPIC}, {}, "drone.telemetry.broker: expected mqtt://"),
    ({"broker": "mqtt://h", "topic": TOPIC, "max_gap_s": 5}, {}, "max_frame_age_s (3) must exceed"),
    ({"broker": "mqtt://h", "topic": TOPIC, "mapping": {"kind": "json", "lat": "a"}}, {}, "mapping.json.lon"),
    ({"broker": "mqtt://h", "topic": TOPIC, "mapping": {"payload": "camera"}}, {}, "payload must look like 99-0-0"),
    ({"broker": "mqtt://h", "topic": TOPIC, "mapping": {"kind": "xml"}}, {}, "mapping"),
    ({"broker": "mqtt://h", "topic": TOPIC, "offset_s": 31}, {}, "offset_s"),
    ({"broker": "mqtt://h", "topic": TOPIC},
     {"calibration": {"points": [{"pixel": [x, x * x], "latlon": [31.2, 121.4 + x * 1e-6]} for x in range(4)]}},
     "drop calibration, or drone"),
])
def test_a_bad_drone_section_is_one_line_naming_the_key_and_never_the_password(telemetry, extra, fragment):
    with pytest.raises(ConfigError) as info:
        parse_daemon_config({"cameras": [{**DRONE, **extra, "drone": {"telemetry": telemetry}}]}, "cams.yaml")
    assert fragment in str(info.value) and "cameras.0[dock1]" in str(info.value)
    assert SECRET not in str(info.value)


def test_config_check_accepts_a_drone_camera_and_hides_the_broker_password(tmp_path):
    cam = {**DRONE, "drone": {**DRONE["drone"], "telemetry": {"broker": f"mqtt://ops:{SECRET}@127.0.0.1",
                                                              "topic": TOPIC}}}
    path = tmp_path / "cameras.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), "cameras": [cam]}))
    result = CliRunner().invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output and "drone: dji_osd telemetry from mqtt://***:***@127.0.0.1" in result.output


# ---- which frame the model gets -----------------------------------------------------------------------


def frame(index: int, wall: float) -> Frame:
    return Frame("dock1", index, wall, np.zeros((72, 128, 3), np.uint8), wall_time=wall)


def test_a_frame_waits_for_the_message_after_it_and_is_given_up_after_max_gap_s():
    link = DroneLink("dock1", DroneSection.model_validate(DRONE["drone"]))
    buf = link.buffer
    buf.add(TelemetrySample(T0, 22.79, 113.95, elevation_m=100.0, gimbal_pitch_deg=-90.0, gimbal_yaw_deg=0.0))
    assert link.due_frame(frame(1, T0 + 0.5), now=T0 + 0.6) == (None, None)  # held: its next message is not here
    assert link.due_frame(frame(2, T0 + 0.7), now=T0 + 0.8) == (None, None)  # still the held one, not a newer frame
    buf.add(TelemetrySample(T0 + 1.0, 22.7901, 113.95, elevation_m=100.0, gimbal_pitch_deg=-90.0, gimbal_yaw_deg=0.0))
    posed, why = link.due_frame(None, now=T0 + 1.1)
    assert why is None and posed.index == 1 and posed.pose.lat == pytest.approx(22.79005)
    # the telemetry stops: the next frame waits max_gap_s (2.5 s) of wall clock, then goes without a position
    assert link.due_frame(frame(3, T0 + 2.0), now=T0 + 4.0) == (None, None)
    assert link.due_frame(None, now=T0 + 4.6) == (None, "telemetry_stale")
    # a frame inside a gap the telemetry has since bridged goes at once, unplaced
    buf.add(TelemetrySample(T0 + 12.0, 22.7910, 113.95))
    assert link.due_frame(frame(4, T0 + 6.0), now=T0 + 12.1) == (None, "gap")
    assert link.without_pose == {"telemetry_stale": 1, "gap": 1} and link.posed == 1
    status = link.describe(now=T0 + 13.0)
    assert status["frames_without_pose"] == {"telemetry_stale": 1, "gap": 1}
    assert status["last_frame_without_pose"]["reason"] == "gap"


def test_the_zoom_narrows_the_field_of_view_of_the_ground_placement():
    lens = CameraIntrinsics.from_focal_35mm(24.0)
    locate = zoom_locator(lens, None)
    box = np.array([100.0, 100.0, 140.0, 140.0])  # far from the centre: the zoom shows in where it lands
    wide = CameraPose(22.79, 113.95, rel_alt_m=100.0, yaw_deg=0.0, pitch_deg=-90.0, roll_deg=0.0, focal_mm=24.0)
    tele = CameraPose(22.79, 113.95, rel_alt_m=100.0, yaw_deg=0.0, pitch_deg=-90.0, roll_deg=0.0, focal_mm=72.0)
    image = np.zeros((720, 1280, 3), np.uint8)
    a = locate(Frame("d", 0, 0.0, image, pose=wide), box)
    b = locate(Frame("d", 0, 0.0, image, pose=tele), box)
    far, near = haversine_m(22.79, 113.95, a[0], a[1]), haversine_m(22.79, 113.95, b[0], b[1])
    assert near == pytest.approx(far / 3.0, rel=0.02)  # 3x zoom: a third of the distance from the nadir point


# ---- a real broker ----------------------------------------------------------------------------------------


def broker_tool(name: str) -> str:
    """Mosquitto's binaries (Debian puts them in /usr/sbin, off a plain user's PATH); missing fails under CI."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing: CI must install mosquitto (.ci/packages.txt)")
        pytest.skip(f"{name} is not installed (tests/run.sh installs mosquitto)")
    return found


@pytest.fixture
def broker_with_password(tmp_path):
    """A Mosquitto of our own on a free port that wants a user name and password."""
    mosquitto, mosquitto_passwd = broker_tool("mosquitto"), broker_tool("mosquitto_passwd")
    passwd = tmp_path / "passwd"
    subprocess.run([mosquitto_passwd, "-b", "-c", str(passwd), "dock", SECRET], check=True, capture_output=True)
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    # run as root, mosquitto would drop to its own user, which cannot read a test's folder
    user = "user root\n" if os.geteuid() == 0 else ""
    conf.write_text(f"{user}listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {passwd}\n"
                    "persistence false\n")
    proc = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import socket

        assert wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, 5)
        yield port
    finally:
        proc.terminate()
        proc.wait(5)


def publish(port: int, topic: str, payloads: list[bytes], user: str | None = None, password: str | None = None):
    import paho.mqtt.client as mqtt

    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2)
    if user:
        client.username_pw_set(user, password)
    client.connect("127.0.0.1", port)
    client.loop_start()
    for payload in payloads:
        client.publish(topic, payload, qos=1).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()


def test_messages_through_a_real_broker_fill_the_buffer_and_bad_ones_are_counted(broker_with_password, caplog):
    caplog.set_level(logging.DEBUG)
    port = broker_with_password
    buf = PoseBuffer(max_gap_s=3.0)
    client = MqttTelemetry("dock1", f"mqtt://dock:{SECRET}@127.0.0.1:{port}", TOPIC, dji_osd_reader(), buf,
                           backoff_initial_s=0.2, backoff_max_s=1).start()
    try:
        assert wait_for(lambda: client.status().state == "connected", 10), client.status()
        now = time.time()
        publish(port, TOPIC, [osd(now - 2, 22.79, 113.95), b"not json", osd(now - 1, 0.0, 0.0),
                              osd(now - 1, 22.7901, 113.95)], "dock", SECRET)
        assert wait_for(lambda: client.status().messages == 4, 10), client.status()
        st = client.status()
        assert st.usable == 2 and st.problems == {"not JSON": 1, "no GPS fix (latitude and longitude are 0)": 1}
        assert buf.pose_at(now - 1.5).lat == pytest.approx(22.79005)
        assert 1.4 <= st.delay_s <= 2.5  # sent 2 s and 1 s after their own time: the delay the status reports
        assert st.broker == f"mqtt://***:***@127.0.0.1:{port}"
    finally:
        client.stop()
    assert client.status().state == "stopped"
    assert SECRET not in caplog.text


def test_a_wrong_password_is_said_without_the_password_and_the_client_keeps_trying(broker_with_password, caplog):
    caplog.set_level(logging.DEBUG)
    port = broker_with_password
    client = MqttTelemetry("dock1", f"mqtt://dock:wrong-{SECRET}@127.0.0.1:{port}", TOPIC, dji_osd_reader(),
                           PoseBuffer(), backoff_initial_s=0.2, backoff_max_s=1).start()
    try:
        assert wait_for(lambda: client.status().last_error is not None, 10)
        assert client.status().state != "connected" and "refused" in client.status().last_error
    finally:
        client.stop()
    assert SECRET not in caplog.text and SECRET not in str(client.status())


def test_a_subscription_the_broker_refuses_is_said_and_never_counted_as_connected():
    # Mosquitto 2.0 grants a subscription its ACL denies (it filters at delivery), so the SUBACK failure that
    # EMQX and others send (0x80) is fed to the callback paho would call
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.reasoncodes import ReasonCode

    client = MqttTelemetry("dock1", "mqtt://127.0.0.1:1", TOPIC, dji_osd_reader(), PoseBuffer())
    client._on_subscribe(None, None, 1, [ReasonCode(PacketTypes.SUBACK, identifier=0x80)])
    st = client.status()
    assert st.state == "refused" and st.connects == 0
    assert "subscription" in st.last_error and TOPIC in st.last_error
    client._on_subscribe(None, None, 2, [ReasonCode(PacketTypes.SUBACK, identifier=0)])  # granted QoS 0
    assert client.status().state == "connected" and client.status().connects == 1


def test_the_client_reconnects_by_itself_when_the_broker_comes_back(tmp_path):
    mosquitto = broker_tool("mosquitto")
    port = free_port()
    conf = tmp_path / "m.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    buf = PoseBuffer()
    client = MqttTelemetry("dock1", f"mqtt://127.0.0.1:{port}", TOPIC, dji_osd_reader(), buf,
                           backoff_initial_s=0.2, backoff_max_s=1).start()
    procs = []
    try:
        for round_ in range(2):  # down at first, then up; then down and up again
            procs.append(subprocess.Popen([mosquitto, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
            assert wait_for(lambda r=round_: client.status().connects == r + 1, 15), client.status()
            publish(port, TOPIC, [osd(time.time() + round_, 22.79, 113.95)])
            assert wait_for(lambda r=round_: len(buf) == r + 1, 5)
            procs[-1].terminate()
            procs[-1].wait(5)
            assert wait_for(lambda: client.status().state == "disconnected", 10)
    finally:
        client.stop()
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert client.status().disconnects == 2


# ---- the daemon: a drone camera on a looped clip, its telemetry through the real Mosquitto ---------------


class Publisher:
    """Publishes OSD messages for a drone hovering at (lat, lon), 5 a second, stamped now, until paused."""

    def __init__(self, topic: str, lat: float, lon: float) -> None:
        import threading

        import paho.mqtt.client as mqtt

        self.topic, self.lat, self.lon = topic, lat, lon
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2)
        self.client.connect("127.0.0.1", 1883)
        self.client.loop_start()
        self.paused, self.done = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.wait(0.2):
            if not self.paused.is_set():
                self.client.publish(self.topic, osd(time.time(), self.lat, self.lon))

    def close(self) -> None:
        self.done.set()
        self.thread.join(2)
        self.client.loop_stop()
        self.client.disconnect()


def test_the_daemon_places_a_drone_cameras_cases_reports_its_telemetry_and_reloads_it(tmp_path):
    import socket

    from sqlalchemy import select

    from streetwatch.camera_daemon.config import load_daemon_config
    from streetwatch.camera_daemon.service import Daemon
    from streetwatch.cases import tables as t
    from streetwatch.cases.store import CaseStore
    from tests.daemon_helpers import GARBAGE, ScriptedModel, config_dict, http_get, metric, model_file, write_config
    from tests.servers.fixtures import write_test_clip

    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", 1883)) != 0:
            if os.environ.get("CI"):
                pytest.fail("no MQTT broker on 127.0.0.1:1883: CI must start Mosquitto (tests/run.sh)")
            pytest.skip("no MQTT broker on 127.0.0.1:1883 (tests/run.sh starts Mosquitto)")
    clip = write_test_clip(tmp_path / "clip.mp4", seconds=2, fps=10, size=(640, 360))
    topic = f"thing/product/T{time.time_ns()}/osd"
    model = str(model_file(tmp_path, "garbage"))
    cam = {**DRONE, "url": str(clip), "model": model, "analysis_fps": 4, "max_frame_age_s": 5,
           "drone": {"telemetry": {"broker": "mqtt://127.0.0.1:1883", "topic": topic, "max_gap_s": 1.0},
                     "focal_mm": 24}}
    path = write_config(tmp_path / "cameras.yaml", config_dict(tmp_path, [cam]))
    db = f"sqlite:///{tmp_path / 'cases.db'}"
    publisher = Publisher(topic, 22.5795, 113.9379)
    daemon = Daemon(load_daemon_config(path), config_path=path, db_url=db,
                    detector_factory=lambda _s: ScriptedModel(GARBAGE)).start()
    store = CaseStore(db)

    def cases_of(store):
        with store.session() as ses:
            return list(ses.scalars(select(t.Case).order_by(t.Case.id)))

    def placed():
        return [(c.lat, c.lon) for c in cases_of(store)]

    def telemetry():
        return daemon.status()["cameras"]["dock1"]["telemetry"]

    try:
        assert wait_for(lambda: placed(), 20), daemon.status()
        lat, lon = placed()[0]
        assert lat is not None and haversine_m(lat, lon, 22.5795, 113.9379) < 150  # on the ground below the drone
        assert telemetry()["state"] == "connected" and telemetry()["frames_posed"] > 0
        text = http_get(daemon.http_port, "/metrics")[1]
        assert 0 <= metric(text, "streetwatch_drone_telemetry_age_seconds", camera="dock1") < 2
        assert metric(text, "streetwatch_drone_frames_posed", camera="dock1") > 0

        publisher.paused.set()  # the telemetry stops: frames wait max_gap_s, then go unplaced and counted
        assert wait_for(lambda: telemetry()["frames_without_pose"].get("telemetry_stale", 0) >= 2, 10), telemetry()
        publisher.paused.clear()  # (one status: both counters read at one instant)
        one = daemon.status()["cameras"]["dock1"]
        # (the scheduler counts the reason, then the drop: a status taken between them sees one more reason)
        assert 0 <= sum(one["telemetry"]["frames_without_pose"].values()) - one["frames_dropped"]["no_pose"] <= 1
        # and the telemetry came back: frames are posed again
        posed = telemetry()["frames_posed"]
        assert wait_for(lambda: telemetry()["frames_posed"] > posed + 2, 10), telemetry()

        old_client, old_session = daemon._cameras["dock1"].drone.client, daemon._cameras["dock1"].session
        cam["drone"]["telemetry"]["offset_s"] = 0.1  # a new offset restarts the camera and its telemetry client
        write_config(path, config_dict(tmp_path, [cam]))
        result = daemon.reload()
        assert result["ok"] and result["changed"] == ["dock1"], result
        assert old_client.status().state == "stopped"
        assert wait_for(lambda: telemetry()["frames_posed"] > 0 and telemetry()["offset_s"] == 0.1, 10), telemetry()
        first_session, second_session = old_session, daemon._cameras["dock1"].session
    finally:
        daemon.stop()
        publisher.close()

    # the flights, for the map: the session before the reload ended with its track and cases; the daemon's stop
    # ended the second
    from streetwatch.cases.drone_tracks import flights_geojson

    def flights():
        return {f["properties"]["session"]: f for f in flights_geojson(store)["features"]}

    assert wait_for(lambda: all(flights().get(s, {}).get("properties", {}).get("ended_at")
                                for s in (first_session, second_session)), 10), flights()
    first = flights()[first_session]
    assert first["properties"]["case_ids"] == [c.id for c in cases_of(store)] and first["geometry"] is not None
    lon, lat = (first["geometry"]["coordinates"][0] if first["geometry"]["type"] == "LineString"
                else first["geometry"]["coordinates"])
    assert haversine_m(lat, lon, 22.5795, 113.9379) < 1.0 and not first["properties"]["live"]

    from fastapi.testclient import TestClient

    from streetwatch.review import ReviewSettings, create_app
    from tests.reviewkit import add_users, login

    add_users(store)
    client = TestClient(create_app(db, tmp_path / "data" / "evidence", ReviewSettings()), base_url="http://testserver")
    assert client.get("/flights.geojson", follow_redirects=False).status_code in (303, 401)  # logged in only
    assert login(client, "alice").status_code == 303
    served = client.get("/flights.geojson?camera=dock1")
    assert served.status_code == 200 and served.headers["content-type"].startswith("application/geo+json")
    assert {f["properties"]["session"] for f in served.json()["features"]} == {first_session, second_session}
    assert 'data-flights="/flights.geojson"' in client.get("/map").text
