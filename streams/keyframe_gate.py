"""Decode a live stream's keyframes only, when they alone come as often as the analysis takes frames.

A camera sends 10-25 frames a second and the daemon analyses one; decoding the other 9-24 was most of a
reader's CPU (`bench daemon`: every stream decoded in full). A P-frame cannot be decoded without the frames
before it, but a keyframe (an IDR frame) can: where the camera's keyframe interval (its "I-frame interval" or
GOP) is no longer than the analysis interval, the keyframes alone give the analysis every frame it takes, and
the other packets need not reach the decoder at all.

The gate decides from packets alone (their keyframe flag and timestamp, known before any decoding), and only
at a keyframe, so the decoder never gets a P-frame whose references it skipped: it starts with full decoding,
switches to keyframes once the last `probe` gaps between keyframes were all short enough, and back to full
decoding at the first keyframe that came late (the camera's interval was changed). A stream whose timestamps
run backwards (a looped file, a restarted encoder) starts its probe over.

Example:
    >>> gate = KeyframeGate(interval_s=1.0)
    >>> for packet in container.demux(stream):
    ...     if gate.skip(packet.is_keyframe, packet.pts * packet.time_base if packet.pts is not None else None):
    ...         continue
    ...     frames = packet.decode()
"""

from __future__ import annotations

from collections import deque

__all__ = ["KeyframeGate"]


class KeyframeGate:
    """Whether a packet may go undecoded (see the module docstring).

    Args:
        interval_s: the analysis interval (1 / analysis_fps); None: decode everything, always.
        probe: keyframe gaps that must all be short enough before packets are skipped.
        slack: a gap up to `interval_s * slack` counts as short enough (timestamps jitter).
    """

    def __init__(self, interval_s: float | None, probe: int = 3, slack: float = 1.05) -> None:
        self.interval_s, self.slack = interval_s, slack
        self._keyframes: deque[float] = deque(maxlen=probe + 1)
        self.keyframes_only = False
        self.skipped = 0  # packets not decoded

    def restart(self) -> None:
        """A new connection: decode everything until its keyframes are measured (`skipped` keeps counting)."""
        self._keyframes.clear()
        self.keyframes_only = False

    def skip(self, is_keyframe: bool, t: float | None) -> bool:
        if self.interval_s is None:
            return False
        if is_keyframe:
            self._at_keyframe(t)
            return False
        if self.keyframes_only:
            self.skipped += 1
            return True
        return False

    def _at_keyframe(self, t: float | None) -> None:
        assert self.interval_s is not None  # skip() never measures keyframes when there is no interval
        if t is None:  # no timestamp: nothing to measure the interval by, decode everything
            self._keyframes.clear()
        else:
            if self._keyframes and t <= self._keyframes[-1]:
                self._keyframes.clear()  # time went back: a new pass or a new stream
            self._keyframes.append(t)
        times = list(self._keyframes)
        full = len(times) == self._keyframes.maxlen
        self.keyframes_only = full and max(b - a for a, b in zip(times, times[1:])) <= self.interval_s * self.slack
