"""Where the checkout is, for tests that read its files (README, models/, sources)."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
