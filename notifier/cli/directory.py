"""`notifier directory ...` and `notifier inbox`: (to be written)."""

from __future__ import annotations

from notifier.cli import cli  # noqa: F401
