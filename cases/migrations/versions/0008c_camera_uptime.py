"""camera_uptime: per camera and UTC hour, the seconds a daemon watched it and the seconds its stream was live
(the bureau report's per-camera uptime)

Revision ID: 0008c_camera_uptime
Revises: 0008b_outbox
Create Date: 2026-12-06 19:10:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0008c_camera_uptime'
down_revision = '0008b_outbox'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'camera_uptime',
        sa.Column('camera_id', sa.String(length=128), nullable=False),
        sa.Column('hour', sa.DateTime(timezone=True), nullable=False),
        sa.Column('up_s', sa.Float(), nullable=False),
        sa.Column('watched_s', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('camera_id', 'hour'),
    )


def downgrade() -> None:
    op.drop_table('camera_uptime')
