"""`Detections`: the boxes a model found in one frame, as parallel numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import numpy as np


@dataclass(frozen=True)
class Detections:
    """Boxes in one frame.

    Attributes:
        xyxy: (n, 4) float32 pixel corners x0, y0, x1, y1 in the original frame.
        confidence: (n,) float32 scores in [0, 1].
        class_id: (n,) int32 model class ids.
        tracker_id: (n,) int64 track ids, -1 where untracked.

    Example:
        >>> dets = Detections(np.array([[0, 0, 10, 10]], np.float32), np.array([0.9], np.float32), np.array([2]))
        >>> dets[dets.confidence > 0.5].class_id
        array([2], dtype=int32)
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    # None (untracked) is only an argument: __post_init__ replaces it with -1s, so the attribute is always an array
    tracker_id: np.ndarray = field(default=cast(np.ndarray, None))

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4) if np.size(self.xyxy) == 0 else np.asarray(
            self.xyxy, dtype=np.float32
        )
        if xyxy.ndim != 2 or xyxy.shape[1] != 4:
            raise ValueError(f"xyxy must be (n, 4), got {xyxy.shape}")
        n = len(xyxy)
        conf = np.asarray(self.confidence, dtype=np.float32).reshape(-1)
        cls = np.asarray(self.class_id, dtype=np.int32).reshape(-1)
        tid = np.full(n, -1, np.int64) if self.tracker_id is None else np.asarray(self.tracker_id, np.int64).reshape(-1)
        for name, arr in (("confidence", conf), ("class_id", cls), ("tracker_id", tid)):
            if len(arr) != n:
                raise ValueError(f"{name} must be ({n},), got {arr.shape}")
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "confidence", conf)
        object.__setattr__(self, "class_id", cls)
        object.__setattr__(self, "tracker_id", tid)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32))

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: np.ndarray | slice | list[int] | int) -> Detections:
        if isinstance(index, int):
            index = [index]
        return Detections(self.xyxy[index], self.confidence[index], self.class_id[index], self.tracker_id[index])

    def with_tracker_ids(self, tracker_id: np.ndarray) -> Detections:
        return Detections(self.xyxy, self.confidence, self.class_id, tracker_id)

    @property
    def area(self) -> np.ndarray:
        """(n,) box areas in pixels."""
        return (self.xyxy[:, 2] - self.xyxy[:, 0]).clip(0) * (self.xyxy[:, 3] - self.xyxy[:, 1]).clip(0)

    @property
    def bottom_center(self) -> np.ndarray:
        """(n, 2) the point where an object meets the ground in a typical view."""
        return np.stack([(self.xyxy[:, 0] + self.xyxy[:, 2]) / 2, self.xyxy[:, 3]], axis=1)

    @property
    def center(self) -> np.ndarray:
        """(n, 2) box centres."""
        return np.stack([(self.xyxy[:, 0] + self.xyxy[:, 2]) / 2, (self.xyxy[:, 1] + self.xyxy[:, 3]) / 2], axis=1)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU between every box of `a` (n, 4) and `b` (m, 4) -> (n, m)."""
    a = np.asarray(a, np.float32).reshape(-1, 4)
    b = np.asarray(b, np.float32).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod((rb - lt).clip(0), axis=2)
    area_a = np.prod((a[:, 2:] - a[:, :2]).clip(0), axis=1)
    area_b = np.prod((b[:, 2:] - b[:, :2]).clip(0), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)
