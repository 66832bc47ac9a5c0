"""rate limits

Revision ID: 0007
Revises: 0004
"""

from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'rate_limit_windows',
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('window_started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('key_hash'),
    )


def downgrade() -> None:
    op.drop_table('rate_limit_windows')
