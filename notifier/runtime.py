"""One process's collaborators (database, HTTP client, retry policy), built once from settings,
and the three units of work the Celery tasks call."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from config import Settings
from notifier.db import make_engine, make_session_factory, transaction
from notifier.delivery import Outcome, Policy, run_delivery
from notifier.fanout import DeliveryRef, fan_out
from notifier.http import HttpClient
from notifier.mailer import Mailer
from notifier.methods import Services
from notifier.models import utcnow
from notifier.netpolicy import parse_networks
from notifier.scheduler import claim_due, recover_lost


@dataclass
class Runtime:
    settings: Settings
    factory: sessionmaker[Session]
    services: Services
    policy: Policy

    @classmethod
    def from_settings(cls, settings: Settings) -> "Runtime":
        factory = make_session_factory(make_engine(settings.database_url))
        http = HttpClient(
            timeout_s=settings.send_timeout_s,
            allowed=parse_networks(settings.allowed_networks),
            user_agent=settings.user_agent,
            retry_after_max_s=settings.retry_after_max_s,
            client_cert=settings.client_cert,
            verify=settings.ca_bundle or True,
        )
        return cls(
            settings=settings,
            factory=factory,
            services=Services(settings=settings, http=http, factory=factory,
                              mailer=Mailer.from_settings(settings)),
            policy=Policy(settings.retry_schedule, settings.max_failures,
                          settings.claim_timeout_s, settings.max_in_flight_per_endpoint),
        )

    def fan_out(self, message: dict) -> list[DeliveryRef]:
        """Record the event and its deliveries; the caller enqueues the result."""
        with transaction(self.factory) as session:
            return fan_out(session, message, server_hostname=self.settings.server_hostname,
                           scheme=self.settings.preferred_url_scheme)

    def deliver(self, delivery_id: str) -> Outcome:
        return run_delivery(self.factory, delivery_id, policy=self.policy,
                            services=self.services)

    def due_deliveries(self) -> list[DeliveryRef]:
        """Close lost attempts, then claim what is due; the caller enqueues the result."""
        now = utcnow()
        recover_lost(self.factory, now, self.policy, batch=self.settings.scheduler_batch)
        with transaction(self.factory) as session:
            return claim_due(session, now, batch=self.settings.scheduler_batch,
                             stale_after_s=self.settings.visibility_timeout_s)
