"""slack: (to be written)."""

from __future__ import annotations

from notifier.methods.base import Method


class SlackMethod(Method):
    name = "slack"
