"""The daemon's metric set: every `streetwatch_*` counter, gauge and histogram it exports.

Kept apart from `camera_daemon.ops`, which holds the generic pieces (registry, Prometheus text, the
HTTP endpoint), so that the list of what the daemon measures reads in one place. The writer, the
camera threads and the daemon's scrape-time collector all update one `DaemonMetrics` instance.
"""

from __future__ import annotations

from streetwatch.camera_daemon.ops import Histogram, Registry

__all__ = ["DaemonMetrics"]


class DaemonMetrics:
    """Every metric the daemon exports (names start with `streetwatch_`)."""

    def __init__(self) -> None:
        r = self.registry = Registry()
        self.frames_in = r.counter("streetwatch_frames_in_total", "Frames decoded from each camera.", ["camera"])
        self.frames_analysed = r.counter("streetwatch_frames_analysed_total", "Frames run through the model.",
                                         ["camera"])
        self.frames_dropped = r.counter(
            "streetwatch_frames_dropped_total",
            "Due frames not analysed: queue_full (the model is behind), stale (older than max_frame_age_s when "
            "the model was free), error (the model failed), shutdown, fenced (fleet: the lease could not be renewed), "
            "no_pose (a drone frame without telemetry around it: never placed).",
            ["camera", "reason"])
        self.telemetry_age = r.gauge("streetwatch_drone_telemetry_age_seconds",
                                     "Live drones: seconds since the moment the newest telemetry message describes.",
                                     ["camera"])
        self.telemetry_messages = r.gauge("streetwatch_drone_telemetry_messages",
                                          "Live drones: telemetry messages received, usable or not.",
                                          ["camera", "usable"])
        self.frames_posed = r.gauge("streetwatch_drone_frames_posed", "Live drones: frames given a pose.",
                                    ["camera"])
        self.reconnects = r.counter("streetwatch_reconnects_total", "Reconnection attempts per camera.", ["camera"])
        self.reader_restarts = r.counter("streetwatch_reader_restarts_total",
                                         "Readers restarted by the daemon's watchdog.", ["camera"])
        self.camera_state = r.gauge("streetwatch_camera_state",
                                    "1 for the camera's current state (connecting/live/backoff/failed).",
                                    ["camera", "state"])
        self.last_frame = r.gauge("streetwatch_camera_last_frame_timestamp_seconds",
                                  "UNIX time of the newest frame from each camera.", ["camera"])
        self.inference_seconds: Histogram = r.histogram("streetwatch_inference_seconds",
                                                        "Model time per batch, seconds.")
        self.batch_size = r.histogram("streetwatch_inference_batch_size", "Frames per model call.",
                                      buckets=(1, 2, 4, 8, 16, 32, 64))
        self.queue_depth = r.gauge("streetwatch_queue_depth", "Items waiting in each queue.", ["queue"])
        self.queue_capacity = r.gauge("streetwatch_queue_capacity", "Size limit of each queue.", ["queue"])
        self.sightings = r.counter("streetwatch_sightings_total", "Sightings confirmed by the rules.",
                                   ["camera", "problem_type"])
        self.cases_opened = r.counter("streetwatch_cases_opened_total", "New cases opened by this daemon.",
                                      ["camera", "problem_type"])
        self.frame_to_case = r.histogram("streetwatch_frame_to_case_seconds",
                                         "From the frame that confirmed a sighting to its database commit.")
        self.db_writes = r.counter("streetwatch_db_writes_total", "Sighting writes: ok, spooled, rejected, lost.",
                                   ["result"])
        self.db_up = r.gauge("streetwatch_database_up", "1 while the database is reachable.")
        self.spool_pending = r.gauge("streetwatch_spool_pending", "Sightings waiting on disk for the database.")
        self.spool_replayed = r.counter("streetwatch_spool_replayed_total", "Spooled sightings written later.")
        self.reloads = r.counter("streetwatch_config_reloads_total", "Configuration reloads.", ["result"])
        self.fleet_held = r.gauge("streetwatch_fleet_camera_held",
                                  "1 for each camera whose lease this host holds (fleet mode).", ["camera", "host"])
        self.fleet_moves = r.counter("streetwatch_fleet_moves_total", "Camera leases claimed, released (handed over "
                                     "to another host) and lost (taken over, or fenced).", ["event"])
        self.fleet_fenced = r.gauge("streetwatch_fleet_fenced",
                                    "1 while this host cannot prove it holds its leases and analyses nothing.")

