"""judgment reviews: a reviewer accepts or rejects an annotator's judgment

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 18:30:00

One row per reviewed judgment (a later decision replaces the earlier one); judgments
without a row are unreviewed, which every judgment of an older store is.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel.sql.sqltypes


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('judgmentreview',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('judgment_id', sa.Integer(), nullable=False),
    sa.Column('decision', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('reviewer_id', sa.Integer(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('decided_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['judgment_id'], ['judgment.id'], ),
    sa.ForeignKeyConstraint(['reviewer_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('judgmentreview', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_judgmentreview_judgment_id'), ['judgment_id'], unique=True)
        batch_op.create_index(batch_op.f('ix_judgmentreview_reviewer_id'), ['reviewer_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('judgmentreview', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_judgmentreview_reviewer_id'))
        batch_op.drop_index(batch_op.f('ix_judgmentreview_judgment_id'))
    op.drop_table('judgmentreview')
