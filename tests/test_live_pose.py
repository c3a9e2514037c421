"""Live drone poses: interpolation between telemetry messages, gaps never bridged, the clock offset, and the
message mappings (DJI Cloud API OSD as docks send it; a generic JSON layout). No video, no broker."""

from __future__ import annotations

import json
import threading

import pytest

from streetwatch.detector.geo import haversine_m
from streetwatch.streams.live_pose import PoseBuffer, TelemetrySample, interpolate, lerp_angle
from streetwatch.streams.telemetry_mapping import (
    JsonFieldMap,
    MessageProblem,
    decode_message,
    dji_osd_reader,
    json_reader,
    read_dji_osd,
)

T0 = 1_733_500_800.0  # 2024-12-06 16:00 UTC


def sample(t: float, lat: float = 22.79, lon: float = 113.95, **kw) -> TelemetrySample:
    return TelemetrySample(t=T0 + t, lat=lat, lon=lon, **kw)


def test_lerp_angle_takes_the_short_way_round():
    assert lerp_angle(170.0, -170.0, 0.5) == 180.0
    assert lerp_angle(-170.0, 170.0, 0.25) == pytest.approx(-175.0)
    assert lerp_angle(10.0, 350.0, 0.5) == pytest.approx(0.0)
    assert lerp_angle(-90.0, 90.0, 0.0) == -90.0


def test_pose_between_two_messages_is_interpolated_and_the_yaw_wraps():
    buf = PoseBuffer(max_gap_s=3.0)
    buf.add(sample(0.0, lat=22.7900, elevation_m=100.0, height_m=120.0, gimbal_yaw_deg=179.0, gimbal_pitch_deg=-90.0,
                   gimbal_roll_deg=0.0, zoom=1.0))
    buf.add(sample(2.0, lat=22.7902, elevation_m=104.0, height_m=124.0, gimbal_yaw_deg=-177.0, gimbal_pitch_deg=-60.0,
                   gimbal_roll_deg=0.0, zoom=3.0))
    pose = buf.pose_at(T0 + 0.5)
    assert pose.lat == pytest.approx(22.79005)
    assert pose.rel_alt_m == pytest.approx(101.0) and pose.abs_alt_m == pytest.approx(121.0)
    assert pose.yaw_deg == pytest.approx(-180.0) or pose.yaw_deg == pytest.approx(180.0)  # via 180, not 0
    assert pose.pitch_deg == pytest.approx(-82.5)
    assert buf.pose_at(T0 + 2.0).lat == pytest.approx(22.7902)  # a message's own time: that message


def test_frames_are_never_posed_past_the_newest_message_before_the_oldest_or_across_a_gap():
    buf = PoseBuffer(max_gap_s=3.0)
    assert buf.lookup(T0).reason == "no_telemetry"
    for t in (0.0, 2.0, 4.0, 14.0, 16.0):  # a 0.5 Hz feed with a 10 s dropout between 4 and 14
        buf.add(sample(t, lat=22.79 + t * 1e-5))
    assert buf.lookup(T0 + 16.1).reason == "ahead"  # would need extrapolation: wait for the next message
    assert buf.lookup(T0 - 0.1).reason == "behind"
    assert buf.lookup(T0 + 9.0).reason == "gap"
    assert buf.lookup(T0 + 4.5).reason == "gap"  # near a message, but between two 10 s apart
    assert buf.lookup(T0 + 3.0).pose is not None and buf.lookup(T0 + 15.0).pose is not None


def test_the_clock_offset_moves_the_frame_onto_the_telemetry_clock():
    buf = PoseBuffer(max_gap_s=3.0, offset_s=0.4)
    buf.add(sample(0.0, lat=22.7900))
    buf.add(sample(1.0, lat=22.7901))
    # a frame stamped 0.9 s (wall clock) shows the moment 0.5 s on the telemetry clock
    assert buf.lookup(T0 + 0.9).telemetry_t == pytest.approx(T0 + 0.5)
    assert buf.pose_at(T0 + 0.9).lat == pytest.approx(22.79005)
    assert buf.lookup(T0 + 1.5).reason == "ahead"  # 1.1 s on the telemetry clock: not yet


def test_old_and_repeated_messages_are_refused_and_history_is_bounded():
    buf = PoseBuffer(max_gap_s=3.0, keep_s=10.0)
    assert buf.add(sample(5.0))
    assert not buf.add(sample(5.0)) and not buf.add(sample(4.0))
    assert buf.out_of_order == 2 and buf.received == 3
    for t in range(6, 30):
        buf.add(sample(float(t)))
    assert len(buf) == 11  # 19..29
    assert buf.lookup(T0 + 10.0).reason == "behind"


def test_the_buffer_is_safe_to_fill_from_one_thread_while_another_reads():
    buf = PoseBuffer(max_gap_s=3.0, keep_s=1e6)

    def fill():
        for i in range(5000):
            buf.add(sample(i * 0.01, lat=22.79 + i * 1e-7))

    thread = threading.Thread(target=fill)
    thread.start()
    seen = 0
    while thread.is_alive():
        pose = buf.pose_at(T0 + 10.0)
        seen += pose is not None
    thread.join()
    assert buf.pose_at(T0 + 10.0).lat == pytest.approx(22.79 + 1000 * 1e-7)
    assert len(buf) == 5000


def test_zoom_multiplies_the_base_focal_length_and_the_aircraft_heading_stands_in_without_a_gimbal():
    a = sample(0.0, aircraft_yaw_deg=90.0, zoom=2.0)
    b = sample(1.0, aircraft_yaw_deg=100.0, zoom=2.0)
    pose = interpolate(a, b, T0 + 0.5, base_focal_mm=24.0)
    assert pose.focal_mm == pytest.approx(48.0)
    assert pose.yaw_deg == pytest.approx(95.0) and pose.pitch_deg is None  # pitch unknown: the locator assumes nadir


# ---- messages --------------------------------------------------------------------------------------------

# An aircraft OSD message as a DJI dock relays it (Cloud API v1.x, thing/product/{sn}/osd), trimmed of
# fields streetwatch does not read; values as an M3TD over a street.
DJI_OSD = {
    "tid": "6a7bfe89-c386-4043-b600-b518e10096cc", "bid": "42a19f36-5117-4520-bd13-fd61d818d52e",
    "timestamp": 1733500800123, "gateway": "7CTDM3D00BVY8B",
    "data": {
        "mode_code": 5, "latitude": 22.5795383, "longitude": 113.9379024, "height": 118.12, "elevation": 95.3,
        "attitude_head": -171.4, "attitude_pitch": -2.1, "attitude_roll": 0.6, "horizontal_speed": 5.02,
        "vertical_speed": 0.0, "battery": {"capacity_percent": 78},
        "99-0-0": {"payload_index": "99-0-0", "gimbal_pitch": -45.2, "gimbal_roll": 0.0, "gimbal_yaw": -171.0,
                   "zoom_factor": 2.0, "measure_target_latitude": 22.5791, "measure_target_longitude": 113.9378,
                   "measure_target_altitude": 22.9, "measure_target_distance": 131.2},
    },
}


def test_a_dji_osd_message_gives_position_heights_attitude_and_the_payload_gimbal():
    s = decode_message(json.dumps(DJI_OSD).encode(), received_at=T0 + 9.0, reader=dji_osd_reader())
    assert s.t == pytest.approx(1733500800.123)  # the message's own time, not its arrival
    assert (s.lat, s.lon, s.height_m, s.elevation_m) == (22.5795383, 113.9379024, 118.12, 95.3)
    assert (s.aircraft_yaw_deg, s.aircraft_pitch_deg, s.aircraft_roll_deg) == (-171.4, -2.1, 0.6)
    assert (s.gimbal_yaw_deg, s.gimbal_pitch_deg, s.gimbal_roll_deg, s.zoom) == (-171.0, -45.2, 0.0, 2.0)


def test_a_named_payload_is_read_and_a_missing_one_is_a_problem():
    two = json.loads(json.dumps(DJI_OSD))
    two["data"]["53-0-0"] = {"payload_index": "53-0-0", "gimbal_pitch": -90.0, "gimbal_yaw": 10.0, "gimbal_roll": 0.0}
    assert read_dji_osd(two, T0, payload="53-0-0").gimbal_pitch_deg == -90.0
    with pytest.raises(MessageProblem, match="payload 42-0-0"):
        read_dji_osd(two, T0, payload="42-0-0")


@pytest.mark.parametrize(("change", "why"), [
    ({"latitude": 0.0, "longitude": 0.0}, "no GPS fix"),
    ({"latitude": 95.0}, "impossible"),
    ({"latitude": None}, "no latitude"),
    ({"latitude": "22.57"}, "no latitude"),  # a string is not a number here
])
def test_a_message_without_a_usable_position_is_refused_with_a_reason(change, why):
    msg = json.loads(json.dumps(DJI_OSD))
    msg["data"].update(change)
    with pytest.raises(MessageProblem, match=why):
        read_dji_osd(msg, T0)


def test_odd_values_are_left_unknown_and_a_missing_timestamp_takes_the_arrival_time():
    msg = json.loads(json.dumps(DJI_OSD))
    del msg["timestamp"]
    msg["data"]["elevation"] = True
    msg["data"]["99-0-0"]["gimbal_yaw"] = 720.0
    s = read_dji_osd(msg, T0 + 3.0)
    assert s.t == T0 + 3.0 and s.elevation_m is None and s.gimbal_yaw_deg is None
    msg["timestamp"] = 1733500800  # seconds where milliseconds belong: a wrong unit, said
    with pytest.raises(MessageProblem, match="not a time in ms"):
        read_dji_osd(msg, T0)


def test_not_json_and_not_osd_are_problems():
    with pytest.raises(MessageProblem, match="not JSON"):
        decode_message(b"\xff\xfe{", T0, dji_osd_reader())
    with pytest.raises(MessageProblem, match="no 'data'"):
        decode_message(b'{"method": "flighttask_progress"}', T0, dji_osd_reader())


def test_a_generic_json_layout_is_read_by_dotted_paths():
    fields = JsonFieldMap(lat="state.position.lat", lon="state.position.lon", time="ts", time_unit="s",
                          elevation="state.position.agl", aircraft_yaw="state.heading",
                          gimbal_pitch="state.gimbals.0.pitch", gimbal_yaw="state.gimbals.0.yaw", zoom="cam.zoom")
    msg = {"ts": T0 + 1.5, "state": {"position": {"lat": 48.1371, "lon": 11.5754, "agl": 60.0}, "heading": 270.0,
                                     "gimbals": [{"pitch": -80.0, "yaw": 268.0}]}, "cam": {}}
    s = decode_message(json.dumps(msg).encode(), T0 + 2.0, json_reader(fields))
    assert s.t == T0 + 1.5 and (s.lat, s.lon, s.elevation_m) == (48.1371, 11.5754, 60.0)
    assert (s.aircraft_yaw_deg, s.gimbal_pitch_deg, s.gimbal_yaw_deg, s.zoom) == (270.0, -80.0, 268.0, None)


def test_interpolated_positions_lie_on_the_straight_line_between_messages():
    a, b = sample(0.0, lat=22.7900, lon=113.9500), sample(1.0, lat=22.7901, lon=113.9501)
    mid = interpolate(a, b, T0 + 0.5)
    assert haversine_m(a.lat, a.lon, mid.lat, mid.lon) == pytest.approx(haversine_m(mid.lat, mid.lon, b.lat, b.lon),
                                                                        rel=1e-6)
