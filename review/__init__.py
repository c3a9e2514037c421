"""The analysts' review surface: a web app on the case store (`streetwatch serve`).

Example:
    >>> from review import ReviewSettings, create_app
    >>> app = create_app("sqlite:///streetwatch-data/streetwatch.db", Path("streetwatch-data/evidence"),
    ...                  ReviewSettings(webhook_url="http://bureau.local/cases"))
"""

from __future__ import annotations

from streetwatch.review.app import create_app
from streetwatch.review.settings import ReviewSettings, load_settings

__all__ = ["ReviewSettings", "create_app", "load_settings"]
