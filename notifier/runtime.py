"""One process's collaborators (database, HTTP client, retry policy), built once from settings,
and the units of work the Celery tasks call (each recording its metrics)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from config import Settings
from notifier.db import make_engine, make_session_factory, transaction
from notifier.delivery import Outcome, Policy, run_delivery
from notifier.fanout import DeliveryRef, fan_out
from notifier.http import HttpClient
from notifier.heartbeat import SCHEDULER, beat
from notifier.mailer import Mailer
from notifier.methods import Services
from notifier.metrics.worker import WorkerMetrics, attempt_outcome, worker_metrics
from notifier.models import Delivery, utcnow
from notifier.netpolicy import parse_networks
from notifier.retention import Pruned, cutoff_for, prune_ledger
from notifier.scheduler import claim_due, recover_lost


@dataclass
class Runtime:
    settings: Settings
    factory: sessionmaker[Session]
    services: Services
    policy: Policy
    metrics: WorkerMetrics | None = field(default=None, repr=False)  # None: the process's

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
        started = time.perf_counter()
        with transaction(self.factory) as session:
            refs = fan_out(session, message, server_hostname=self.settings.server_hostname,
                           scheme=self.settings.preferred_url_scheme)
        self._metrics().record_fan_out(message["event"], time.perf_counter() - started)
        return refs

    def deliver(self, delivery_id: str) -> Outcome:
        """One attempt of ``delivery_id``; the outcome names its method when it did anything."""
        outcome = run_delivery(self.factory, delivery_id, policy=self.policy,
                               services=self.services)
        if outcome.method is None and attempt_outcome(outcome):  # skipped or busy: not claimed
            with self.factory() as session:
                outcome = replace(outcome, method=session.scalar(
                    select(Delivery.method).where(Delivery.id == delivery_id)))
        if outcome.method:
            self._metrics().record_outcome(outcome, outcome.method)
        return outcome

    def prune_ledger(self) -> Pruned:
        """Delete the finished ledger older than the retention period, in small batches."""
        return prune_ledger(self.factory, cutoff_for(self.settings.ledger_retention_days),
                            batch=self.settings.retention_batch,
                            budget_s=self.settings.retention_interval_s / 2)

    def _metrics(self) -> WorkerMetrics:
        return self.metrics or worker_metrics()

    def due_deliveries(self) -> list[DeliveryRef]:
        """Close lost attempts, then claim what is due; the caller enqueues the result."""
        now = utcnow()
        recover_lost(self.factory, now, self.policy, batch=self.settings.scheduler_batch)
        with transaction(self.factory) as session:
            beat(session, SCHEDULER, now)
            return claim_due(session, now, batch=self.settings.scheduler_batch,
                             stale_after_s=self.settings.visibility_timeout_s)
