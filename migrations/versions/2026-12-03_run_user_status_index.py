"""run: index (user_id, status), for the per-user active-run quota counted on every submission

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 12:00:00.000000
"""
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.create_index('ix_run_user_status', ['user_id', 'status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.drop_index('ix_run_user_status')
