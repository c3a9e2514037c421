"""The analysts' review surface: a web app on the case store (`streetwatch serve`).

Example:
    >>> from review import ReviewSettings, create_app
    >>> app = create_app("sqlite:///streetwatch-data/streetwatch.db", Path("streetwatch-data/evidence"),
    ...                  ReviewSettings(webhook_url="http://bureau.local/cases"))

Imported lazily, so that `review.actions` (used by `training.from_reviews`) does not load FastAPI.
"""

from __future__ import annotations

__all__ = ["ReviewSettings", "create_app", "load_settings"]


def __getattr__(name: str):
    if name == "create_app":
        from review.app import create_app

        return create_app
    if name in ("ReviewSettings", "load_settings"):
        from review import settings

        return getattr(settings, name)
    raise AttributeError(f"module 'review' has no attribute {name!r}")
