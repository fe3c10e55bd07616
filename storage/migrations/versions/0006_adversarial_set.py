"""adversarial set: prompts written in the Red-team tab or flagged through a failed response
(adversarialprompt), and each person's failure flag with the response they saw (failureflag)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 01:20:00

Nothing to backfill: before this revision no prompt was adversarial.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel.sql.sqltypes


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('adversarialprompt',
    sa.Column('prompt_id', sa.Integer(), nullable=False),
    sa.Column('origin', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('added_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['prompt_id'], ['prompt.id'], ),
    sa.PrimaryKeyConstraint('prompt_id')
    )
    op.create_table('failureflag',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('prompt_id', sa.Integer(), nullable=False),
    sa.Column('generation_id', sa.Integer(), nullable=True),
    sa.Column('model_version_id', sa.Integer(), nullable=True),
    sa.Column('response', sa.Text(), nullable=False),
    sa.Column('category', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['generation_id'], ['generation.id'], ),
    sa.ForeignKeyConstraint(['model_version_id'], ['modelversion.id'], ),
    sa.ForeignKeyConstraint(['prompt_id'], ['prompt.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('failureflag', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_failureflag_generation_id'), ['generation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_failureflag_prompt_id'), ['prompt_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_failureflag_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('failureflag', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_failureflag_user_id'))
        batch_op.drop_index(batch_op.f('ix_failureflag_prompt_id'))
        batch_op.drop_index(batch_op.f('ix_failureflag_generation_id'))
    op.drop_table('failureflag')
    op.drop_table('adversarialprompt')
