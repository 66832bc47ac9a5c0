"""delivery endpoints

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 12:55:16.745299
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:

    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('endpoint', sa.String(length=300), nullable=True))
        batch_op.create_index('ix_deliveries_endpoint_state', ['endpoint', 'state'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_endpoint_state')
        batch_op.drop_column('endpoint')


