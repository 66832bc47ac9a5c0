"""One process's collaborators (database, HTTP client, retry policy), built once from settings,
and the units of work the Celery tasks call, each recording its metrics. Each rides out a short
database outage in place (``notifier.outage``); a longer one ends in the database's error,
which the task answers by putting its message back in the queue."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from sqlalchemy.orm import Session, sessionmaker

from config import Settings
from notifier.db import hot, make_engine, make_session_factory, reconnecting, transaction
from notifier.deadletters import bury
from notifier.delivery import Outcome, Policy, run_delivery
from notifier.fanout import DeliveryRef, fan_out
from notifier.heartbeat import SCHEDULER, beat
from notifier.http import HttpClient
from notifier.ledger import abandon_delivery
from notifier.mailer import Mailer
from notifier.methods import Services
from notifier.metrics.worker import WorkerMetrics, worker_metrics
from notifier.models import utcnow
from notifier.netpolicy import parse_networks
from notifier.outage import Outage, is_database_unavailable
from notifier.retention import Pruned, cutoff_for, prune_ledger
from notifier.scheduler import claim_due, recover_lost


@dataclass
class Runtime:
    settings: Settings
    factory: sessionmaker[Session]
    services: Services
    policy: Policy
    outage: Outage
    # True once the worker is shutting down: waits for the database end early then.
    stopping: Callable[[], bool] = field(default=lambda: False)
    metrics: WorkerMetrics | None = field(default=None, repr=False)  # None: the process's

    @classmethod
    def from_settings(cls, settings: Settings,
                      stopping: Callable[[], bool] = lambda: False) -> "Runtime":
        # No pre-ping on the hot path: units of work run again on a dead connection.
        factory = make_session_factory(make_engine(settings.database_url, pre_ping=False))
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
            outage=Outage(wait_s=settings.database_wait_bound_s,
                          log_interval_s=settings.outage_log_interval_s),
            stopping=stopping,
        )

    def fan_out(self, message: dict) -> list[DeliveryRef]:
        """Record the event and its deliveries; the caller enqueues the result."""
        def once() -> list[DeliveryRef]:
            with hot(self.factory) as db:  # PostgreSQL: a read and one write, in autocommit
                refs = fan_out(db, message, server_hostname=self.settings.server_hostname,
                               scheme=self.settings.preferred_url_scheme, policy=self.policy)
                db.commit()
                return refs
        started = time.perf_counter()
        refs = self.outage.call(lambda: reconnecting(once), stopping=self.stopping)
        self._metrics().record_fan_out(message["event"], time.perf_counter() - started)
        return refs

    def deliver(self, delivery_id: str) -> Outcome:
        """One attempt of ``delivery_id``; the outcome names its method when it did anything.
        Run again after an outage, a claim already taken makes the repeat a no-op: the
        scheduler then closes the attempt as worker_lost once its claim expires."""
        outcome = self.outage.call(
            lambda: run_delivery(self.factory, delivery_id, policy=self.policy,
                                 services=self.services),
            stopping=self.stopping)
        if outcome.method:  # attempted, or refused at a full endpoint, or skipped (disabled)
            self._metrics().record_outcome(outcome, outcome.method)
        return outcome

    def abandon(self, delivery_id: str, reason: str) -> bool:
        """End a delivery whose task raised before any attempt (see ledger.abandon_delivery)."""
        def once() -> bool:
            with transaction(self.factory) as session:
                return abandon_delivery(session, delivery_id, reason)
        return self.outage.call(once, stopping=self.stopping)

    def prune_ledger(self) -> Pruned:
        """Delete the finished ledger older than the retention period, in small batches."""
        return prune_ledger(self.factory, cutoff_for(self.settings.ledger_retention_days),
                            batch=self.settings.retention_batch,
                            budget_s=self.settings.retention_interval_s / 2)

    def _metrics(self) -> WorkerMetrics:
        return self.metrics or worker_metrics()

    def due_deliveries(self) -> list[DeliveryRef]:
        """Close lost attempts, then claim what is due; the caller enqueues the result.
        While the database is away this finds nothing (beat calls again next interval)."""
        now = utcnow()
        try:
            recover_lost(self.factory, now, self.policy, batch=self.settings.scheduler_batch)
            with transaction(self.factory) as session:
                beat(session, SCHEDULER, now)
                refs = claim_due(session, now, batch=self.settings.scheduler_batch,
                                 stale_after_s=self.settings.visibility_timeout_s)
        except Exception as exc:
            if not is_database_unavailable(exc):
                raise
            self.outage.report(exc)
            return []
        self.outage.recovered()
        return refs

    def bury(self, task: str, args: list[Any], *, reason: str, tries: int) -> int:
        """Move a message that keeps failing to the dead-letter store; returns its id."""
        def once() -> int:
            with transaction(self.factory) as session:
                return bury(session, task, args, reason=reason, tries=tries, now=utcnow())
        return self.outage.call(once, stopping=self.stopping)
