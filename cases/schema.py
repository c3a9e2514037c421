"""The whole case database in one metadata: the case tables and the review tables.

`cases.tables` and `cases.review_tables` each declare their classes on the same `Base`; only what
needs every table at once (the Alembic environment, a test comparing tables with migrations) imports
this module, so neither table module has to import the other back.
"""

from __future__ import annotations

from sqlalchemy import MetaData

from streetwatch.cases import box_corrections, drone_tracks, leases, review_tables, source_frames, tables, uptime

# importing box_corrections, drone_tracks, leases, review_tables, source_frames and uptime is what adds their tables
# to Base
__all__ = ["box_corrections", "drone_tracks", "leases", "metadata", "review_tables", "source_frames", "tables",
           "uptime"]

metadata: MetaData = tables.Base.metadata
