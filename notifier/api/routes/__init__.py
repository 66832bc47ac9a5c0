"""The API's routers, one module per area."""

from notifier.api.routes import (
    deliveries,
    directory,
    emails,
    events,
    health,
    inbox,
    metrics,
    notifications,
)

ROUTERS = [health.router, notifications.router, deliveries.router, events.router, emails.router,
           inbox.router, directory.router, metrics.router]
