"""`streams.live.redact_url`, the one redaction for camera and stream URLs (live reader, daemon logs, /status,
metrics)."""

from __future__ import annotations

import pytest

from streetwatch.streams.live import redact_url


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rtsp://admin:secret@10.0.0.5:554/s1", "rtsp://***:***@10.0.0.5:554/s1"),
        ("rtsp://10.0.0.5/s1", "rtsp://10.0.0.5/s1"),
        ("http://u:p@ss@cam.local/x.mjpg", "http://***:***@cam.local/x.mjpg"),
        ("/videos/cam@home.mp4", "/videos/cam@home.mp4"),
        # credentials in the query string (Foscam-style CGI, Dahua-style RTSP, tokens of HLS relays)
        ("http://10.0.0.9/videostream.cgi?usr=admin&pwd=secret&resolution=32",
         "http://10.0.0.9/videostream.cgi?usr=***&pwd=***&resolution=32"),
        ("rtsp://10.0.0.5:554/cam/realmonitor?channel=1&subtype=0&user=admin&password=secret",
         "rtsp://10.0.0.5:554/cam/realmonitor?channel=1&subtype=0&user=***&password=***"),
        ("https://relay.example/live/cam1.m3u8?token=secret#t=3", "https://relay.example/live/cam1.m3u8?token=***#t=3"),
        ("http://cam/snap.jpg?API_KEY=secret;Passwd=secret", "http://cam/snap.jpg?API_KEY=***;Passwd=***"),
        ("rtsp://cam/s1?channel=2&subtype=1&keyframe=1", "rtsp://cam/s1?channel=2&subtype=1&keyframe=1"),
        # in a message, every URL, whatever quotes it
        ("cannot open 'rtsp://a:secret@h/1?pwd=secret': refused; retry rtsp://c:d@h/2",
         "cannot open 'rtsp://***:***@h/1?pwd=***': refused; retry rtsp://***:***@h/2"),
    ],
)
def test_redact_url(text: str, expected: str) -> None:
    assert redact_url(text) == expected
    assert redact_url(expected) == expected  # idempotent: redacting twice changes nothing
