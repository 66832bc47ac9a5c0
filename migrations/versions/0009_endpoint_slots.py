"""endpoint slots: a per-endpoint in-flight counter kept by triggers, and ledger indexes

Revision ID: 0009
Revises: 0008

The claim used to count an endpoint's delivering rows under an advisory lock; it now adds one
to ``endpoint_slots.in_flight`` while the count is under the bound, and a trigger takes it back
whenever a delivering row leaves that state or is deleted (whatever the path: record, skip,
recovery, cascade). The history pages read (notification, created, id) and (created, id).
"""

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

_RELEASE = "UPDATE endpoint_slots SET in_flight = in_flight - 1 WHERE endpoint = OLD.endpoint"
_LEAVES = "OLD.state = 'delivering' AND OLD.endpoint IS NOT NULL"

_POSTGRESQL = [
    f"""CREATE FUNCTION endpoint_slot_release() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN {_RELEASE}; RETURN NULL; END $$""",
    f"""CREATE TRIGGER deliveries_release_slot_on_update AFTER UPDATE OF state ON deliveries
        FOR EACH ROW WHEN ({_LEAVES} AND NEW.state <> 'delivering')
        EXECUTE FUNCTION endpoint_slot_release()""",
    f"""CREATE TRIGGER deliveries_release_slot_on_delete AFTER DELETE ON deliveries
        FOR EACH ROW WHEN ({_LEAVES}) EXECUTE FUNCTION endpoint_slot_release()""",
]
_SQLITE = [
    f"""CREATE TRIGGER deliveries_release_slot_on_update AFTER UPDATE OF state ON deliveries
        FOR EACH ROW WHEN {_LEAVES} AND NEW.state <> 'delivering' BEGIN {_RELEASE}; END""",
    f"""CREATE TRIGGER deliveries_release_slot_on_delete AFTER DELETE ON deliveries
        FOR EACH ROW WHEN {_LEAVES} BEGIN {_RELEASE}; END""",
]


def upgrade() -> None:
    op.create_table(
        'endpoint_slots',
        sa.Column('endpoint', sa.String(length=300), nullable=False),
        sa.Column('in_flight', sa.Integer(), server_default='0', nullable=False),
        sa.Column('busy_until_s', sa.Float(), server_default='0', nullable=False),
        sa.PrimaryKeyConstraint('endpoint'),
    )
    op.execute("""INSERT INTO endpoint_slots (endpoint, in_flight, busy_until_s)
                  SELECT endpoint, SUM(CASE WHEN state = 'delivering' THEN 1 ELSE 0 END), 0
                  FROM deliveries WHERE endpoint IS NOT NULL GROUP BY endpoint""")
    op.drop_index('ix_deliveries_endpoint_state', table_name='deliveries')  # nothing counts
    op.drop_index('ix_deliveries_notification_created', table_name='deliveries')
    op.create_index('ix_deliveries_notification_created', 'deliveries',
                    ['notification_uuid', 'created_at', 'id'])
    op.create_index('ix_deliveries_created', 'deliveries', ['created_at', 'id'])
    for statement in _POSTGRESQL if _dialect() == 'postgresql' else _SQLITE:
        op.execute(statement)


def _dialect() -> str:
    return op.get_bind().dialect.name


def downgrade() -> None:
    on_table = " ON deliveries" if _dialect() == 'postgresql' else ""
    for trigger in ("deliveries_release_slot_on_update", "deliveries_release_slot_on_delete"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}{on_table}")
    if _dialect() == 'postgresql':
        op.execute("DROP FUNCTION IF EXISTS endpoint_slot_release()")
    op.drop_index('ix_deliveries_created', table_name='deliveries')
    op.drop_index('ix_deliveries_notification_created', table_name='deliveries')
    op.create_index('ix_deliveries_notification_created', 'deliveries',
                    ['notification_uuid', 'created_at'])
    op.create_index('ix_deliveries_endpoint_state', 'deliveries', ['endpoint', 'state'])
    op.drop_table('endpoint_slots')
