"""grids (a bureau's unit grids, 单元网格), cases.grid_code (the grid a case lies in) and cameras.grid_code (the grid
cameras.yaml names for a camera)

Revision ID: 0008a_grids
Revises: 0007
Create Date: 2026-12-06 19:10:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0008a_grids'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'grids',
        sa.Column('code', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('head', sa.String(length=200), nullable=False),
        sa.Column('geometry', sa.JSON(), nullable=False),
        sa.Column('source', sa.Text(), nullable=False),
        sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('code'),
    )
    # cases filed before keep NULL until grids are loaded (`cases regrid --grids FILE` assigns every case)
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('grid_code', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_cases_grid_code', ['grid_code'], unique=False)
    with op.batch_alter_table('cameras', schema=None) as batch_op:
        batch_op.add_column(sa.Column('grid_code', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('cameras', schema=None) as batch_op:
        batch_op.drop_column('grid_code')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_grid_code')
        batch_op.drop_column('grid_code')
    op.drop_table('grids')
