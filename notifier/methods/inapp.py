"""quay_notification: (to be written)."""

from __future__ import annotations

from notifier.methods.base import Method


class QuayNotificationMethod(Method):
    name = "quay_notification"
