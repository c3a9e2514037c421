"""sightings.source and sightings.source_offset_s (where a sighting was seen: file or stream, seconds into it);
cases.code, cases.name_zh, cases.name_en, cases.category_zh (the taxonomy's bureau code and names, as filed)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 06:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sightings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('source_offset_s', sa.Float(), nullable=True))
    # server defaults fill the rows filed before this revision; the review app and exports then take the
    # code and names from the taxonomy for them
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('code', sa.String(length=32), server_default='', nullable=False))
        batch_op.add_column(sa.Column('name_zh', sa.String(length=128), server_default='', nullable=False))
        batch_op.add_column(sa.Column('name_en', sa.String(length=256), server_default='', nullable=False))
        batch_op.add_column(sa.Column('category_zh', sa.String(length=64), server_default='', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_column('category_zh')
        batch_op.drop_column('name_en')
        batch_op.drop_column('name_zh')
        batch_op.drop_column('code')
    with op.batch_alter_table('sightings', schema=None) as batch_op:
        batch_op.drop_column('source_offset_s')
        batch_op.drop_column('source')
