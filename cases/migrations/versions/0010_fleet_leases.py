"""fleet: camera_leases (who analyses which camera until when, with a fencing token) and fleet_hosts (heartbeats
and capacities of the daemon hosts sharing one camera list)

Revision ID: 0010_fleet_leases
Revises: 0009
Create Date: 2026-12-06 21:10:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0010_fleet_leases'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'camera_leases',
        sa.Column('camera_id', sa.String(length=128), nullable=False),
        sa.Column('host', sa.String(length=64), nullable=True),
        sa.Column('token', sa.BigInteger(), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('renewed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('camera_id'),
    )
    op.create_table(
        'fleet_hosts',
        sa.Column('host', sa.String(length=64), nullable=False),
        sa.Column('instance', sa.String(length=200), nullable=False),
        sa.Column('capacity', sa.Integer(), nullable=False),
        sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('joined_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('host'),
    )


def downgrade() -> None:
    op.drop_table('fleet_hosts')
    op.drop_table('camera_leases')
