"""merge this round's branches: box corrections (0010_box_corrections) and the fleet leases with the drone flights
(0010_fleet_leases -> 0011_drone_tracks) were written side by side from 0009; nothing to change, one head again

Revision ID: 0012
Revises: 0010_box_corrections, 0011_drone_tracks
Create Date: 2026-12-06 21:45:00
"""

revision = '0012'
down_revision = ('0010_box_corrections', '0011_drone_tracks')
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
