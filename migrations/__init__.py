"""Alembic migrations; run them with `notifier db upgrade`."""
