"""live changes: when each version went live

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 04:20:00

A store made before this revision has no history; its live version (if any) is recorded as
live since it was created, which is the best that store knows.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel.sql.sqltypes


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('livechange',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('changed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('changed_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.ForeignKeyConstraint(['version_id'], ['modelversion.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('livechange', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_livechange_changed_at'), ['changed_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_livechange_version_id'), ['version_id'], unique=False)
    op.execute("INSERT INTO livechange (version_id, changed_at, changed_by) "
               "SELECT id, created_at, 'before live history (0002)' FROM modelversion WHERE is_live")


def downgrade() -> None:
    with op.batch_alter_table('livechange', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_livechange_version_id'))
        batch_op.drop_index(batch_op.f('ix_livechange_changed_at'))
    op.drop_table('livechange')
