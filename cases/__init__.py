"""The case store: tables and migrations, place-aware dedup, the store itself, evidence, exports, re-check, spool.

Sightings come in (from `detector`), cases go out (to the review app, exports and the webhook).
"""

from streetwatch.cases.dedup import CaseView, match_case

__all__ = ["CaseView", "match_case"]
