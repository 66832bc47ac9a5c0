"""Alembic environment: the URL and engine come from the caller (see notifier.migrate)."""

from alembic import context

from notifier.models import Base

connectable = context.config.attributes["engine"]

with connectable.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
