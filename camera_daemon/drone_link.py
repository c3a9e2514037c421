"""A live drone camera's telemetry link: the MQTT client, the pose buffer, and which frame goes to the model.

    DroneLink(camera)        PoseBuffer + MqttTelemetry (started and stopped with the camera's reader)
      .due_frame(newest, now) the scheduler's question: which frame to analyse now, posed
      .locator()             pixel → ground for `AnalysisStep`, zoom-aware (`detector.locate`)
      .describe(now)         the camera's `telemetry` entry in /status

Why frames wait: telemetry comes at its own rate (DJI OSD at 0.5 Hz), so the newest frame is usually newer
than the newest message. Its pose is never extrapolated: the frame is HELD until the message after it arrives
(then interpolated), or given up after `max_gap_s` without one (counted as `no_pose`, never placed). While a
frame is held, no newer one is taken; the camera is late by at most `max_gap_s`, which `max_frame_age_s`
must exceed (`Camera._drone`).

Only the scheduler thread calls `due_frame`; counters are plain ints read by /status.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter
from dataclasses import replace

from streetwatch.camera_daemon.drone_config import DroneSection
from streetwatch.detector.frames import CameraPose, Frame
from streetwatch.detector.geo import CameraIntrinsics, haversine_m
from streetwatch.detector.locate import lens_intrinsics, make_locator
from streetwatch.detector.rules import Locator
from streetwatch.streams.live_pose import PoseBuffer
from streetwatch.streams.mqtt_telemetry import MqttTelemetry

__all__ = ["DroneLink", "zoom_locator"]

log = logging.getLogger("streetwatch.daemon")


def focal_35mm(lens: CameraIntrinsics) -> float:
    """The 35 mm equivalent focal length of a horizontal field of view (36 mm wide film)."""
    return 18.0 / math.tan(math.radians(lens.hfov_deg) / 2.0)


def zoom_locator(lens: CameraIntrinsics, ground_elev_m: float | None) -> Locator:
    """`detector.locate.make_locator` with the lens of each frame's zoom: a pose's `focal_mm` (the zoom-1 focal
    length times the zoom factor, `streams.live_pose`) narrows the field of view; without one, ``lens``."""
    base_focal = focal_35mm(lens)
    cache: dict[float, Locator] = {}
    wide = make_locator(lens, ground_elev_m)

    def locate(frame: Frame, xyxy):
        focal = frame.pose.focal_mm if frame.pose is not None else None
        if focal is None or abs(focal - base_focal) < 1e-6:
            return wide(frame, xyxy)
        key = round(focal, 3)
        if key not in cache:
            if len(cache) > 64:
                cache.clear()
            cache[key] = make_locator(CameraIntrinsics.from_focal_35mm(key, lens.aspect), ground_elev_m)
        return cache[key](frame, xyxy)

    return locate


class DroneLink:
    """One drone camera's telemetry and the frame it holds for it (see the module docstring)."""

    def __init__(self, camera_id: str, drone: DroneSection, backoff_initial_s: float = 0.5,
                 backoff_max_s: float = 30.0) -> None:
        tel = drone.telemetry
        self.camera_id, self.drone = camera_id, drone
        self.lens = lens_intrinsics(drone.camera_model, drone.focal_mm, drone.hfov_deg)
        self.buffer = PoseBuffer(max_gap_s=tel.max_gap_s, offset_s=tel.offset_s, base_focal_mm=focal_35mm(self.lens))
        self.client = MqttTelemetry(camera_id, tel.broker, tel.topic, tel.mapping.reader(), self.buffer,
                                    backoff_initial_s=backoff_initial_s, backoff_max_s=backoff_max_s)
        self.held: Frame | None = None
        self.posed = 0
        self.without_pose: Counter[str] = Counter()  # reason -> frames given up
        self.last_without_pose: tuple[float, str] | None = None  # (frame time, reason) of the latest one
        # where it flew, for the map: thinned posed positions not yet written (`camera_daemon.flight_job`)
        self.track: list[tuple[float, float, float, float | None]] = []
        self._track_last: tuple[float, float, float] | None = None
        self._track_lock = threading.Lock()
        self.stopped = False  # the camera stopped: its flight ends once its last points are written

    def start(self) -> DroneLink:
        self.client.start()
        return self

    def stop(self) -> None:
        self.stopped = True
        self.client.stop()

    def locator(self) -> Locator:
        return zoom_locator(self.lens, self.drone.ground_elev_m)

    def due_frame(self, newest: Frame | None, now: float) -> tuple[Frame | None, str | None]:
        """(posed frame, None) to analyse now; (None, None) while waiting for telemetry or a frame; (None, reason)
        when the held frame is given up without a position (counted here; the caller counts the drop too)."""
        if self.held is None:
            if newest is None:
                return None, None
            self.held = newest
        frame = self.held
        stamp = frame.wall_time if frame.wall_time is not None else frame.ts
        found = self.buffer.lookup(stamp)
        if found.pose is not None:
            self.held = None
            self.posed += 1
            self._keep_track(stamp, found.pose)
            return replace(frame, pose=found.pose), None
        if found.reason == "ahead" and not self.buffer.expired(stamp, now):
            return None, None
        if found.reason == "no_telemetry" and not self.buffer.expired(stamp, now):
            return None, None
        self.held = None
        # "ahead" given up: no message came after the frame in time (the telemetry stalled or lags too much)
        reason = {"ahead": "telemetry_stale"}.get(found.reason or "gap", found.reason or "gap")
        self.without_pose[reason] += 1
        if self.last_without_pose is None or now - self.last_without_pose[0] > 60:
            log.warning("camera %s: frames without a position (%s): telemetry %s; not placed", self.camera_id,
                        reason, self.client.status().state,
                        extra={"camera": self.camera_id, "event": "no_pose", "reason": reason})
        self.last_without_pose = (stamp, reason)
        return None, reason

    def _keep_track(self, t: float, pose: CameraPose) -> None:
        """A point every 5 m or 5 s of flight (a hover adds one every 5 s, a fast pass one per 5 m)."""
        last = self._track_last
        if last is not None and t - last[0] < 5.0 and haversine_m(last[1], last[2], pose.lat, pose.lon) < 5.0:
            return
        self._track_last = (t, pose.lat, pose.lon)
        with self._track_lock:
            self.track.append((t, pose.lat, pose.lon, pose.rel_alt_m))

    def take_track(self) -> list[tuple[float, float, float, float | None]]:
        """The points kept since the last call (the flight job's thread)."""
        with self._track_lock:
            points, self.track = self.track, []
        return points

    def describe(self, now: float) -> dict:
        st = self.client.status()
        tel = self.drone.telemetry
        return {
            "broker": st.broker, "topic": st.topic, "state": st.state, "messages": st.messages, "usable": st.usable,
            "problems": st.problems, "connects": st.connects, "disconnects": st.disconnects,
            "last_error": st.last_error,
            "last_message_age_s": None if st.last_message_wall is None else round(now - st.last_message_wall, 2),
            "telemetry_age_s": None if st.last_sample_t is None else round(now - st.last_sample_t, 2),
            "telemetry_delay_s": st.delay_s,
            "offset_s": tel.offset_s, "max_gap_s": tel.max_gap_s,
            "frames_posed": self.posed, "frames_without_pose": dict(self.without_pose),
            "last_frame_without_pose": None if self.last_without_pose is None else
            {"at": round(self.last_without_pose[0], 3), "reason": self.last_without_pose[1]},
        }
