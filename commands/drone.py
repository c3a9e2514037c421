"""Drone footage: telemetry sidecar -> per-frame camera pose -> pixel-to-ground locator."""

from __future__ import annotations


def drone_locator(item):
    """(locator, pose-attacher, notes) for a footage item; (None, None, {}) when it has no telemetry."""
    return None, None, {}
