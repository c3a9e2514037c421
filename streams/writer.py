"""Write BGR frames to a real H.264/H.265 file with PyAV (tests, benchmarks and the bundled sample use it)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np


def write_video(path: Path, frames: Iterable[np.ndarray], fps: int = 25, codec: str = "libx264",
                gop_s: float = 2.0, crf: int = 28, preset: str = "veryfast",
                creation_time: str | None = None) -> Path:
    """Encode `frames` (all the same size, even width/height) with a keyframe every `gop_s` seconds."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        if creation_time:
            container.metadata["creation_time"] = creation_time
        stream: av.VideoStream | None = None
        for image in frames:
            if stream is None:
                h, w = image.shape[:2]
                added = container.add_stream(codec, rate=fps)
                if not isinstance(added, av.VideoStream):  # `codec` is any name: an audio or subtitle one is wrong
                    raise ValueError(f"{codec!r} is not a video codec")
                stream = added
                stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
                gop = max(1, int(round(fps * gop_s)))
                stream.options = {"crf": str(crf), "preset": preset, "g": str(gop), "keyint_min": str(gop),
                                  "sc_threshold": "0"}
                if codec == "libx265":
                    stream.options["x265-params"] = f"keyint={gop}:min-keyint={gop}:scenecut=0:log-level=error"
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
            for packet in stream.encode(frame):
                container.mux(packet)
        if stream is not None:
            for packet in stream.encode():
                container.mux(packet)
    return path
