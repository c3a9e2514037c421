"""box_corrections: analysts' corrections of the boxes on sightings' evidence frames (a box drawn around what the
model missed, a class changed, a box marked wrong), each with who and when; `dataset from-reviews` reads them

Revision ID: 0010_box_corrections
Revises: 0009
Create Date: 2026-12-06 21:10:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0010_box_corrections'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'box_corrections',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('sighting_id', sa.Integer(), nullable=False),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.Column('target_id', sa.Integer(), nullable=True),
        sa.Column('box_norm', sa.JSON(), nullable=True),
        sa.Column('class_name', sa.String(length=64), nullable=True),
        sa.Column('frame_sha256', sa.String(length=64), nullable=False),
        sa.Column('actor', sa.String(length=64), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['sighting_id'], ['sightings.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_box_corrections_sighting_id', 'box_corrections', ['sighting_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_box_corrections_sighting_id', table_name='box_corrections')
    op.drop_table('box_corrections')
