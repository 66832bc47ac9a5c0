"""directory and in-app notifications

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 12:06:53.752142
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('authorized_emails',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('repository', sa.String(length=512), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('confirmed', sa.Boolean(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=True),
    sa.Column('code_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code_hash'),
    sa.UniqueConstraint('repository', 'email')
    )
    op.create_table('organizations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('inapp_notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('organization_id', sa.Integer(), nullable=True),
    sa.Column('delivery_id', sa.String(length=36), nullable=True),
    sa.Column('recipient', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('metadata', sa.JSON(), nullable=False),
    sa.Column('dismissed', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('(user_id IS NULL) <> (organization_id IS NULL)', name='one_target'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('delivery_id', 'recipient'),
    sa.UniqueConstraint('uuid')
    )
    with op.batch_alter_table('inapp_notifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inapp_notifications_organization_id'), ['organization_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_inapp_notifications_user_id'), ['user_id'], unique=False)

    op.create_table('organization_admins',
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('organization_id', 'user_id')
    )
    op.create_table('teams',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('organization_id', 'name')
    )
    op.create_table('repository_permissions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('repository', sa.String(length=512), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('team_id', sa.Integer(), nullable=True),
    sa.Column('role', sa.String(length=8), nullable=False),
    sa.CheckConstraint("role IN ('read', 'write', 'admin')", name='known_role'),
    sa.CheckConstraint('(user_id IS NULL) <> (team_id IS NULL)', name='one_grantee'),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('repository', 'team_id'),
    sa.UniqueConstraint('repository', 'user_id')
    )
    with op.batch_alter_table('repository_permissions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_repository_permissions_repository'), ['repository'], unique=False)

    op.create_table('team_members',
    sa.Column('team_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('team_id', 'user_id')
    )



def downgrade() -> None:

    op.drop_table('team_members')
    with op.batch_alter_table('repository_permissions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_repository_permissions_repository'))

    op.drop_table('repository_permissions')
    op.drop_table('teams')
    op.drop_table('organization_admins')
    with op.batch_alter_table('inapp_notifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inapp_notifications_user_id'))
        batch_op.drop_index(batch_op.f('ix_inapp_notifications_organization_id'))

    op.drop_table('inapp_notifications')
    op.drop_table('users')
    op.drop_table('organizations')
    op.drop_table('authorized_emails')

