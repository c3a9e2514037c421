"""The change gate: skip inference on frames that did not change (opt-in, `gate_threshold`)."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["ChangeGate"]


class ChangeGate:
    """Skips inference on frames that did not change since the last analysed one.

    Compares 64x36 grey thumbnails; a mean absolute difference under `threshold` (0..255) counts
    as unchanged. Fixed cameras on a quiet street see long stretches of identical frames.
    """

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self._ref: np.ndarray | None = None
        self.last = None

    def unchanged(self, image: np.ndarray) -> bool:
        thumb = cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), (64, 36), interpolation=cv2.INTER_AREA)
        thumb = thumb.astype(np.int16)
        if self._ref is not None and self.last is not None and float(np.abs(thumb - self._ref).mean()) < self.threshold:
            return True
        self._ref = thumb
        return False
