"""run: incomplete_reason, why a run a limit stopped ended `incomplete` (max_messages, max_tokens, timeout)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 13:00:00.000000
"""
import sqlalchemy as sa
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('incomplete_reason', sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.drop_column('incomplete_reason')
