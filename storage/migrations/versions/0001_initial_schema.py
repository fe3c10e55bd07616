"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 01:44:13.904241
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel.sql.sqltypes


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('modelversion',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('base_model', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('artifact_path', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
    sa.Column('is_adapter', sa.Boolean(), nullable=False),
    sa.Column('round_id', sa.Integer(), nullable=True),
    sa.Column('data_snapshot', sa.JSON(), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('is_live', sa.Boolean(), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['parent_id'], ['modelversion.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('modelversion', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_modelversion_is_live'), ['is_live'], unique=False)
        batch_op.create_index(batch_op.f('ix_modelversion_name'), ['name'], unique=True)
        batch_op.create_index(batch_op.f('ix_modelversion_round_id'), ['round_id'], unique=False)

    op.create_table('prompt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('content_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=True),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('prompt', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_prompt_content_hash'), ['content_hash'], unique=True)

    op.create_table('user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('password_hash', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=True),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_username'), ['username'], unique=True)

    op.create_table('annotationitem',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('prompt_id', sa.Integer(), nullable=False),
    sa.Column('generation_ids', sa.JSON(), nullable=False),
    sa.Column('overlap', sa.Integer(), nullable=False),
    sa.Column('purpose', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('gold_answer', sa.JSON(), nullable=True),
    sa.Column('priority', sa.Float(), nullable=False),
    sa.Column('judged_count', sa.Integer(), nullable=False),
    sa.Column('assigned_user_id', sa.Integer(), nullable=True),
    sa.Column('source_judgment_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['assigned_user_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['prompt_id'], ['prompt.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('annotationitem', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_annotationitem_assigned_user_id'), ['assigned_user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_annotationitem_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_annotationitem_prompt_id'), ['prompt_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_annotationitem_source_judgment_id'), ['source_judgment_id'], unique=False)
        batch_op.create_index('ix_annotationitem_open',
                              ['kind', 'purpose', sa.text('priority DESC'), 'id', 'judged_count', 'overlap'],
                              unique=False, sqlite_where=sa.text('judged_count < overlap'),
                              postgresql_where=sa.text('judged_count < overlap'))

    op.create_table('generation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('prompt_id', sa.Integer(), nullable=False),
    sa.Column('model_version_id', sa.Integer(), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('text_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['model_version_id'], ['modelversion.id'], ),
    sa.ForeignKeyConstraint(['prompt_id'], ['prompt.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('generation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_generation_model_version_id'), ['model_version_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_generation_prompt_id'), ['prompt_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_generation_text_hash'), ['text_hash'], unique=False)

    op.create_table('round',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('config_path', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=True),
    sa.Column('config_yaml', sa.Text(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('stage', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('progress', sa.JSON(), nullable=False),
    sa.Column('completed_stages', sa.JSON(), nullable=False),
    sa.Column('data_snapshot', sa.JSON(), nullable=False),
    sa.Column('parent_version_id', sa.Integer(), nullable=True),
    sa.Column('output_version_id', sa.Integer(), nullable=True),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('work_dir', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=True),
    sa.Column('log_path', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=True),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('finished_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['output_version_id'], ['modelversion.id'], ),
    sa.ForeignKeyConstraint(['parent_version_id'], ['modelversion.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('round', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_round_status'), ['status'], unique=False)

    op.create_table('judgment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('prompt_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=True),
    sa.Column('generation_ids', sa.JSON(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('shown_order', sa.JSON(), nullable=True),
    sa.Column('duration_ms', sa.Integer(), nullable=True),
    sa.Column('client_key', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['annotationitem.id'], ),
    sa.ForeignKeyConstraint(['prompt_id'], ['prompt.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('client_key', name='uq_judgment_client_key')
    )
    with op.batch_alter_table('judgment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_judgment_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_judgment_item_id'), ['item_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_judgment_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_judgment_prompt_id'), ['prompt_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_judgment_user_id'), ['user_id'], unique=False)
        batch_op.create_index('ix_judgment_user_id_item_id', ['user_id', 'item_id'], unique=False)

    op.create_table('itemclaim',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['annotationitem.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('item_id', 'user_id', name='uq_itemclaim_item_user')
    )
    with op.batch_alter_table('itemclaim', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_itemclaim_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_itemclaim_item_id'), ['item_id'], unique=False)
        batch_op.create_index('ix_itemclaim_user_id_expires_at', ['user_id', 'expires_at'], unique=False)

    op.create_table('blindvote',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('prompt_id', sa.Integer(), nullable=False),
    sa.Column('version_a_id', sa.Integer(), nullable=False),
    sa.Column('version_b_id', sa.Integer(), nullable=False),
    sa.Column('generation_a_id', sa.Integer(), nullable=False),
    sa.Column('generation_b_id', sa.Integer(), nullable=False),
    sa.Column('shown_order', sa.JSON(), nullable=False),
    sa.Column('choice', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('client_key', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['generation_a_id'], ['generation.id'], ),
    sa.ForeignKeyConstraint(['generation_b_id'], ['generation.id'], ),
    sa.ForeignKeyConstraint(['prompt_id'], ['prompt.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['version_a_id'], ['modelversion.id'], ),
    sa.ForeignKeyConstraint(['version_b_id'], ['modelversion.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('client_key', name='uq_blindvote_client_key')
    )
    with op.batch_alter_table('blindvote', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_blindvote_user_id'), ['user_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('blindvote', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_blindvote_user_id'))

    op.drop_table('blindvote')
    with op.batch_alter_table('itemclaim', schema=None) as batch_op:
        batch_op.drop_index('ix_itemclaim_user_id_expires_at')
        batch_op.drop_index(batch_op.f('ix_itemclaim_item_id'))
        batch_op.drop_index(batch_op.f('ix_itemclaim_expires_at'))

    op.drop_table('itemclaim')
    with op.batch_alter_table('judgment', schema=None) as batch_op:
        batch_op.drop_index('ix_judgment_user_id_item_id')
        batch_op.drop_index(batch_op.f('ix_judgment_user_id'))
        batch_op.drop_index(batch_op.f('ix_judgment_prompt_id'))
        batch_op.drop_index(batch_op.f('ix_judgment_kind'))
        batch_op.drop_index(batch_op.f('ix_judgment_item_id'))
        batch_op.drop_index(batch_op.f('ix_judgment_created_at'))

    op.drop_table('judgment')
    with op.batch_alter_table('round', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_round_status'))

    op.drop_table('round')
    with op.batch_alter_table('generation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_generation_text_hash'))
        batch_op.drop_index(batch_op.f('ix_generation_prompt_id'))
        batch_op.drop_index(batch_op.f('ix_generation_model_version_id'))

    op.drop_table('generation')
    with op.batch_alter_table('annotationitem', schema=None) as batch_op:
        batch_op.drop_index('ix_annotationitem_open')
        batch_op.drop_index(batch_op.f('ix_annotationitem_prompt_id'))
        batch_op.drop_index(batch_op.f('ix_annotationitem_kind'))
        batch_op.drop_index(batch_op.f('ix_annotationitem_assigned_user_id'))
        batch_op.drop_index(batch_op.f('ix_annotationitem_source_judgment_id'))

    op.drop_table('annotationitem')
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_username'))

    op.drop_table('user')
    with op.batch_alter_table('prompt', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_prompt_content_hash'))

    op.drop_table('prompt')
    with op.batch_alter_table('modelversion', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_modelversion_round_id'))
        batch_op.drop_index(batch_op.f('ix_modelversion_name'))
        batch_op.drop_index(batch_op.f('ix_modelversion_is_live'))

    op.drop_table('modelversion')
