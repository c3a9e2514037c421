"""merge the bureau-integration branches: grids (0008a, from 0007) and camera uptime (0008c, after the outbox's 0008b)
were written side by side; nothing to change, one head again

Revision ID: 0009
Revises: 0008a_grids, 0008c_camera_uptime
Create Date: 2026-12-06 19:30:00
"""

revision = '0009'
down_revision = ('0008a_grids', '0008c_camera_uptime')
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
