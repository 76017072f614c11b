"""router_stat and router_outcome: what the planner's model router learned, per user and workflow

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 16:00:00.000000
"""
import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'router_stat',
        sa.Column('pk', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.String(length=40), nullable=False),
        sa.Column('workflow_id', sa.String(length=40), nullable=False),
        sa.Column('kind', sa.String(length=100), nullable=False),
        sa.Column('model', sa.String(length=100), nullable=False),
        sa.Column('stats', sa.JSON(), nullable=False),
        sa.Column('updated_at', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('pk', name='pk_router_stat'),
        sa.UniqueConstraint('user_id', 'workflow_id', 'kind', 'model',
                            name='uq_router_stat_user_id_workflow_id_kind_model'),
    )
    op.create_table(
        'router_outcome',
        sa.Column('pk', sa.Integer(), nullable=False),
        sa.Column('run_id', sa.String(length=40), nullable=False),
        sa.Column('user_id', sa.String(length=40), nullable=False),
        sa.Column('workflow_id', sa.String(length=40), nullable=False),
        sa.Column('subtask_id', sa.String(length=100), nullable=False),
        sa.Column('kind', sa.String(length=100), nullable=False),
        sa.Column('model', sa.String(length=100), nullable=False),
        sa.Column('success', sa.Float(), nullable=False),
        sa.Column('cost_cents', sa.Float(), nullable=False),
        sa.Column('latency_s', sa.Float(), nullable=False),
        sa.Column('reward', sa.Float(), nullable=False),
        sa.Column('feedback', sa.Text(), nullable=True),
        sa.Column('created_at', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('pk', name='pk_router_outcome'),
        sa.UniqueConstraint('run_id', 'subtask_id', name='uq_router_outcome_run_id_subtask_id'),
    )
    with op.batch_alter_table('router_outcome', schema=None) as batch_op:
        batch_op.create_index('ix_router_outcome_run_id', ['run_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('router_outcome', schema=None) as batch_op:
        batch_op.drop_index('ix_router_outcome_run_id')
    op.drop_table('router_outcome')
    op.drop_table('router_stat')
