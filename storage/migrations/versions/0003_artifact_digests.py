"""artifact digests: the sha256 of each file of a version's artifact, recorded at registration

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 14:00:00

Versions registered before this revision have none (NULL): `rlhf db check` can only see
whether their folder exists. Hashing every artifact here would make the upgrade as slow as
the models are large, so it is left to registration.
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('modelversion', schema=None) as batch_op:
        batch_op.add_column(sa.Column('artifact_digests', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('modelversion', schema=None) as batch_op:
        batch_op.drop_column('artifact_digests')
