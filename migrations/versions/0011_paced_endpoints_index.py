"""paced endpoints: an index of the endpoint slots whose bound is lowered

Revision ID: 0011
Revises: 0010

Fan-out reads, with an event's notifications, how many endpoints are paced and full (their
deliveries wait from the start), and takes wait tickets only while there are some. Paced
endpoints are few: the partial index keeps that read small however many endpoints there are,
and ``slow_limit`` changes rarely, so the claim's update of ``in_flight`` stays a heap-only
one.
"""

from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

_PACED = sa.text("slow_limit IS NOT NULL")


def upgrade() -> None:
    op.create_index('ix_endpoint_slots_paced', 'endpoint_slots', ['endpoint'],
                    postgresql_where=_PACED, sqlite_where=_PACED)


def downgrade() -> None:
    op.drop_index('ix_endpoint_slots_paced', table_name='endpoint_slots')
