"""email: (to be written)."""

from __future__ import annotations

from notifier.methods.base import Method


class EmailMethod(Method):
    name = "email"
