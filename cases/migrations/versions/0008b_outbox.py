"""work_orders (the outbox: a case's event for the city-management platform, stored before it is sent, with its
retries) and webhook_deliveries.work_order_id (which order an attempt sent)

Revision ID: 0008b_outbox
Revises: 0007
Create Date: 2026-12-06 19:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0008b_outbox'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'work_orders',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('case_event_id', sa.Integer(), nullable=True),
        sa.Column('event', sa.String(length=32), nullable=False),
        sa.Column('idempotency_key', sa.String(length=200), nullable=False),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('actor', sa.String(length=128), nullable=False),
        sa.Column('claimed_by', sa.String(length=128), nullable=True),
        sa.Column('last_status_code', sa.Integer(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('dead_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('replays', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name='fk_work_orders_case_id_cases'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('idempotency_key', name='uq_work_orders_idempotency_key'),
    )
    with op.batch_alter_table('work_orders', schema=None) as batch_op:
        batch_op.create_index('ix_work_orders_case_id', ['case_id'], unique=False)
        batch_op.create_index('ix_work_orders_case_event_id', ['case_event_id'], unique=False)
        batch_op.create_index('ix_work_orders_due', ['state', 'next_attempt_at'], unique=False)
    # attempts made before the outbox (inline pushes) keep NULL: they sent no stored order
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('work_order_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_webhook_deliveries_work_order_id', ['work_order_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_deliveries_work_order_id')
        batch_op.drop_column('work_order_id')
    with op.batch_alter_table('work_orders', schema=None) as batch_op:
        batch_op.drop_index('ix_work_orders_due')
        batch_op.drop_index('ix_work_orders_case_event_id')
        batch_op.drop_index('ix_work_orders_case_id')
    op.drop_table('work_orders')
