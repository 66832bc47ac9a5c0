"""What every notification method is: a name, a config check, and a send."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from sqlalchemy.orm import Session, sessionmaker

from config import Settings
from notifier.http import HttpClient, HttpResult
from notifier.masking import mask
from notifier.netpolicy import Network


ENDPOINT_MAX = 300  # the ledger column's size


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
    event_config: dict[str, Any] = field(default_factory=dict)
    notification_uuid: str = ""


@dataclass(frozen=True)
class Services:
    """What a send may use, built once per worker process: never a module global."""

    settings: Settings
    http: HttpClient
    factory: sessionmaker[Session] | None = None  # in-app rows and directory lookups
    mailer: Any = None  # notifier.mailer.Mailer


def url_endpoint(url: Any) -> str | None:
    """``host:port`` of an http(s) URL (the port its scheme implies when none is given)."""
    try:
        parts = urlsplit(str(url))
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    return f"{parts.hostname}:{port}" if parts.hostname else None


@dataclass(frozen=True)
class CreateContext:
    """What a config check may consult: the repository and the network policy."""

    repository: str
    allowed_networks: tuple[Network, ...] = ()
    session: Session | None = None  # directory lookups (users, teams, authorized e-mails)


class Method:
    """A notification method. Subclasses set ``name`` and implement both calls."""

    name: ClassVar[str]
    secret_keys: ClassVar[tuple[str, ...]] = ()  # config values shown masked, never in clear
    service_endpoint: ClassVar[str | None] = None  # the one outside service it reaches, if fixed
    carried_keys: ClassVar[tuple[str, ...]] = ()  # config keys an edit keeps when it omits them

    def endpoint(self, config: dict[str, Any]) -> str | None:
        """Where this notification's attempts go (e.g. ``host:port``), to bound how many run
        at once against one receiver; None for methods that reach no outside service."""
        return self.service_endpoint

    def delivery_endpoint(self, config: dict[str, Any], repository: str) -> str | None:
        """What a delivery's attempts count against. A shared service (SMTP, Flowdock,
        HipChat) is split per namespace: one tenant's backlog takes its own share of attempts
        in flight and its own wait, never everyone's."""
        endpoint = self.endpoint(config)
        if endpoint is not None and endpoint == self.service_endpoint:
            return f"{endpoint}#{repository.split('/', 1)[0]}"[:ENDPOINT_MAX]
        return endpoint

    def masked_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """The config as people may see it (command line, API): secrets masked."""
        return {key: mask(value) if key in self.secret_keys else value
                for key, value in config.items()}

    def validate_config(self, config: dict[str, Any], context: CreateContext) -> dict[str, Any]:
        """Check ``config`` at create time and return it as stored (InvalidNotificationConfig)."""
        raise NotImplementedError

    def send(self, context: DeliveryContext, services: Services) -> HttpResult | None:
        """Deliver once; raise a DeliveryError subclass when the attempt fails."""
        raise NotImplementedError
