"""flowdock: (to be written)."""

from __future__ import annotations

from notifier.methods.base import Method


class FlowdockMethod(Method):
    name = "flowdock"
