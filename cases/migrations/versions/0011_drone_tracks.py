"""drone_tracks: each live drone flight's track (daemon session, camera, times, thinned posed positions), for the
map and the flights GeoJSON (issue 26)

Revision ID: 0011_drone_tracks
Revises: 0010_fleet_leases
Create Date: 2026-12-06 21:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0011_drone_tracks'
down_revision = '0010_fleet_leases'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'drone_tracks',
        sa.Column('session', sa.String(length=255), nullable=False),
        sa.Column('camera_id', sa.String(length=128), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('points', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('session'),
    )
    op.create_index('ix_drone_tracks_camera_id', 'drone_tracks', ['camera_id'])


def downgrade() -> None:
    op.drop_index('ix_drone_tracks_camera_id', table_name='drone_tracks')
    op.drop_table('drone_tracks')
