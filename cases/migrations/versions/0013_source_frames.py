"""source_frames and frame_corrections: analysts' box corrections on any frame of a source opened in the review app
(a video at a time, a photo), the decoded frame kept as a JPEG named by its SHA-256; `dataset from-reviews` reads them

Revision ID: 0013_source_frames
Revises: 0012
Create Date: 2026-12-07 01:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0013_source_frames'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'source_frames',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.Column('camera_id', sa.String(length=128), nullable=False),
        sa.Column('source_path', sa.Text(), nullable=False),
        sa.Column('source_sha256', sa.String(length=64), nullable=True),
        sa.Column('t', sa.Float(), nullable=False),
        sa.Column('frame_index', sa.Integer(), nullable=False),
        sa.Column('width', sa.Integer(), nullable=False),
        sa.Column('height', sa.Integer(), nullable=False),
        sa.Column('scene_id', sa.String(length=160), nullable=True),
        sa.Column('lat', sa.Float(), nullable=True),
        sa.Column('lon', sa.Float(), nullable=True),
        sa.Column('model_boxes', sa.JSON(), nullable=False),
        sa.Column('path', sa.Text(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('created_by', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['run_id'], ['runs.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('run_id', 'frame_index', name='uq_source_frames_run_frame'),
    )
    op.create_index('ix_source_frames_run_id', 'source_frames', ['run_id'], unique=False)
    op.create_table(
        'frame_corrections',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('frame_id', sa.Integer(), nullable=False),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.Column('target_id', sa.Integer(), nullable=True),
        sa.Column('sighting_id', sa.Integer(), nullable=True),
        sa.Column('box_norm', sa.JSON(), nullable=True),
        sa.Column('class_name', sa.String(length=64), nullable=True),
        sa.Column('actor', sa.String(length=64), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['frame_id'], ['source_frames.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_frame_corrections_frame_id', 'frame_corrections', ['frame_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_frame_corrections_frame_id', table_name='frame_corrections')
    op.drop_table('frame_corrections')
    op.drop_index('ix_source_frames_run_id', table_name='source_frames')
    op.drop_table('source_frames')
