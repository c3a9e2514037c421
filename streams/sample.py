"""The bundled sample: a street clip and a zone file the project makes itself, for the first run.

Ultralytics ships a real street photograph (`ultralytics/assets/bus.jpg`). Set into a 1280x720
street view at the size a kerbside camera would see a bus, and held still for 90 s with a little
sensor noise, it becomes a fixed-camera clip of a bus standing at a kerb; the zone file marks
that kerb as no-parking, so the embedded default finds one illegal-parking case.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from streetwatch.detector.errors import SourceError
from streetwatch.streams.writer import write_video

SAMPLE_VERSION = "v3"  # bump when the sample changes: old copies in data folders are then left alone
SAMPLE_NAME = "kerbside-cam_20261128_080000.mp4"  # the date in the name gives the clip its wall time


def bus_photo() -> Path:
    import ultralytics

    return Path(ultralytics.__file__).parent / "assets" / "bus.jpg"


def build_sample(folder: Path, seconds: int = 90, fps: int = 5) -> tuple[Path, Path]:
    """Write the sample clip and its zones (once); returns (clip, zones file)."""
    import cv2

    folder = Path(folder)
    clip = folder / SAMPLE_VERSION / "kerbside-cam" / SAMPLE_NAME
    zones = folder / SAMPLE_VERSION / "sample-zones.yaml"
    if not clip.exists():
        photo = cv2.imread(str(bus_photo()))
        if photo is None:  # an Ultralytics install without its assets, or an unreadable file
            raise SourceError(f"{bus_photo()}: cannot read the photograph the sample is made from")
        image = np.full((720, 1280, 3), 118, np.uint8)  # a grey street
        cv2.rectangle(image, (0, 640), (1280, 720), (90, 90, 90), -1)  # the kerb lane
        height = 380
        width = int(photo.shape[1] * height / photo.shape[0])
        image[300:300 + height, 420:420 + width] = cv2.resize(photo, (width, height), interpolation=cv2.INTER_AREA)
        rng = np.random.default_rng(0)

        def frames():
            for _ in range(seconds * fps):
                noise = rng.integers(-3, 4, image.shape, dtype=np.int16)
                yield np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)

        write_video(clip, frames(), fps=fps, gop_s=2.0)
    if not zones.exists():
        zones.write_text(yaml.safe_dump({
            "timezone": "UTC",
            "zones": [{
                "id": "kerb-no-parking",
                "camera": "kerbside-cam",
                "kind": "no_parking",
                "units": "relative",
                "polygon": [[0.0, 0.7], [1.0, 0.7], [1.0, 1.0], [0.0, 1.0]],
            }],
        }, sort_keys=False))
    return clip, zones
