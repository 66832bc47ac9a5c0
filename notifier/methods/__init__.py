"""The registry of notification methods: one explicit name → method table."""

from __future__ import annotations

from notifier.errors import UnknownMethod
from notifier.methods.base import CreateContext, DeliveryContext, Method, Services
from notifier.methods.email import EmailMethod
from notifier.methods.flowdock import FlowdockMethod
from notifier.methods.hipchat import HipchatMethod
from notifier.methods.inapp import QuayNotificationMethod
from notifier.methods.slack import SlackMethod
from notifier.methods.webhook import WebhookMethod

__all__ = ["CreateContext", "DeliveryContext", "METHODS", "Method", "Services", "get_method"]


def _registry(*methods: Method) -> dict[str, Method]:
    table: dict[str, Method] = {}
    for method in methods:
        if method.name in table:
            raise RuntimeError(f"notification method {method.name!r} is registered twice")
        table[method.name] = method
    return table


METHODS: dict[str, Method] = _registry(
    QuayNotificationMethod(),
    EmailMethod(),
    WebhookMethod(),
    SlackMethod(),
    FlowdockMethod(),
    HipchatMethod(),
)


def get_method(name: str) -> Method:
    """The method called ``name``; UnknownMethod otherwise."""
    try:
        return METHODS[name]
    except (KeyError, TypeError):
        raise UnknownMethod(str(name)) from None
