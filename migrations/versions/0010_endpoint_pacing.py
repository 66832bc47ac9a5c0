"""endpoint pacing: a smaller bound for an endpoint whose attempts time out

Revision ID: 0010
Revises: 0009

``endpoint_slots.slow_limit`` is NULL while an endpoint answers in time (the bound is the
setting's). An attempt that times out halves it (at least 1); an answer in time raises it by
one, back to NULL once it reaches the setting's bound.
"""

from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('endpoint_slots') as table:
        table.add_column(sa.Column('slow_limit', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('endpoint_slots') as table:
        table.drop_column('slow_limit')
