"""dead letters

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 22:00:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'dead_letters',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('task', sa.String(length=64), nullable=False),
        sa.Column('message', sa.Text(), nullable=False),
        sa.Column('event_id', sa.String(length=128), nullable=True),
        sa.Column('repository', sa.String(length=255), nullable=True),
        sa.Column('event', sa.String(length=64), nullable=True),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('tries', sa.Integer(), nullable=False),
        sa.Column('dead_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_dead_letters_event_id', 'dead_letters', ['event_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_dead_letters_event_id', table_name='dead_letters')
    op.drop_table('dead_letters')
