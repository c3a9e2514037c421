"""sightings.frame_offset_s and sightings.frame_seen: where in its source, and when, the evidence frame (the one
`frame_index` names and the evidence images show) was seen — a track's best frame is rarely its first

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 09:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # rows filed before keep NULL: their evidence frame's time was never recorded (exports then fall back to
    # the sighting's start, as they always did)
    with op.batch_alter_table('sightings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('frame_offset_s', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('frame_seen', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('sightings', schema=None) as batch_op:
        batch_op.drop_column('frame_seen')
        batch_op.drop_column('frame_offset_s')
