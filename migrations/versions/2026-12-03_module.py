"""module: users' prompt modules, which pipeline steps name (/api/v1/modules); run.steps, a pipeline's states

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 14:00:00.000000
"""
import sqlalchemy as sa
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'module',
        sa.Column('pk', sa.Integer(), nullable=False),
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('user_id', sa.String(length=40), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('system_message', sa.Text(), nullable=False),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('model', sa.String(length=100), nullable=True),
        sa.Column('created_at', sa.Integer(), nullable=False),
        sa.Column('updated_at', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['user.id'], name='fk_module_user_id_user'),
        sa.PrimaryKeyConstraint('pk', name='pk_module'),
        sa.UniqueConstraint('user_id', 'name', name='uq_module_user_id_name'),
    )
    with op.batch_alter_table('module', schema=None) as batch_op:
        batch_op.create_index('ix_module_id', ['id'], unique=True)
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('steps', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.drop_column('steps')
    with op.batch_alter_table('module', schema=None) as batch_op:
        batch_op.drop_index('ix_module_id')
    op.drop_table('module')
