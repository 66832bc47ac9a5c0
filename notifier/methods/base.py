"""What every notification method is: a name, a config check, and a send."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from notifier.http import HttpClient, HttpResult
from notifier.netpolicy import Network


@dataclass(frozen=True)
class DeliveryContext:
    """Everything one attempt needs, read from the ledger before sending."""

    delivery_id: str
    event: str
    repository: str
    event_data: dict[str, Any]
    config: dict[str, Any]
    attempt: int
    now: datetime
    performer: dict[str, Any] = field(default_factory=dict)
    title: str | None = None


@dataclass(frozen=True)
class CreateContext:
    """What a config check may consult: the repository and the network policy."""

    repository: str
    allowed_networks: tuple[Network, ...] = ()


class Method:
    """A notification method. Subclasses set ``name`` and implement both calls."""

    name: ClassVar[str]

    def validate_config(self, config: dict[str, Any], context: CreateContext) -> dict[str, Any]:
        """Check ``config`` at create time and return it as stored (InvalidNotificationConfig)."""
        raise NotImplementedError

    def send(self, context: DeliveryContext, http: HttpClient) -> HttpResult | None:
        """Deliver once; raise a DeliveryError subclass when the attempt fails."""
        raise NotImplementedError
