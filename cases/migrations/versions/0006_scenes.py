"""scene_refs (a camera's learnt scenes: PTZ presets, re-aimed views); cases.scene_id, sightings.scene_id and
sightings.scene_box (the place a fixed camera saw a problem in, and the box in that scene's reference view)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 09:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'scene_refs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('camera_id', sa.String(length=128), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('scene_id', sa.String(length=160), nullable=False),
        sa.Column('width', sa.Integer(), nullable=False),
        sa.Column('height', sa.Integer(), nullable=False),
        sa.Column('to_ref', sa.JSON(), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_scene_refs_camera', 'scene_refs', ['camera_id', 'number'], unique=False)
    op.create_index('ix_scene_refs_digest', 'scene_refs', ['digest'], unique=False)
    # existing cases and sightings keep NULL: "scene not known yet" (`streetwatch cases re-check-places` fills it)
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scene_id', sa.String(length=160), nullable=True))
    with op.batch_alter_table('sightings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scene_id', sa.String(length=160), nullable=True))
        batch_op.add_column(sa.Column('scene_box', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('sightings', schema=None) as batch_op:
        batch_op.drop_column('scene_box')
        batch_op.drop_column('scene_id')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_column('scene_id')
    op.drop_index('ix_scene_refs_digest', table_name='scene_refs')
    op.drop_index('ix_scene_refs_camera', table_name='scene_refs')
    op.drop_table('scene_refs')
