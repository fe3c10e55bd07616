"""withdrawn judgments and guidelines: an annotator's undo or edit moves the judgment to withdrawnjudgment,
kept whole; an engineer's edit of a queue kind's guidelines is kept in guideline; a multi-turn
prompt keeps its turns in prompt.messages (NULL: a single user turn, the prompt's text)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 18:10:00

Nothing to backfill: before this revision no judgment could be withdrawn, and guidelines came
only from the app config.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel.sql.sqltypes


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('prompt', schema=None) as batch_op:
        batch_op.add_column(sa.Column('messages', sa.JSON(), nullable=True))
    op.create_table('guideline',
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('updated_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('kind')
    )
    op.create_table('withdrawnjudgment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('judgment_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=True),
    sa.Column('judgment', sa.JSON(), nullable=False),
    sa.Column('replaced_by_id', sa.Integer(), nullable=True),
    sa.Column('withdrawn_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['annotationitem.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('withdrawnjudgment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_withdrawnjudgment_judgment_id'), ['judgment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_withdrawnjudgment_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('withdrawnjudgment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_withdrawnjudgment_user_id'))
        batch_op.drop_index(batch_op.f('ix_withdrawnjudgment_judgment_id'))
    op.drop_table('withdrawnjudgment')
    op.drop_table('guideline')
    with op.batch_alter_table('prompt', schema=None) as batch_op:
        batch_op.drop_column('messages')
