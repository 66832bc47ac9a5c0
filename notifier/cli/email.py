"""`notifier email authorize|confirm`: (to be written)."""

from __future__ import annotations

from notifier.cli import cli  # noqa: F401
