"""Publishing events over HTTP, for a registry that would rather not speak to the broker."""

from __future__ import annotations

from fastapi import APIRouter

from notifier.api.deps import ProducerDep, ServiceDep
from notifier.api.models import EventPublish

router = APIRouter(prefix="/api/v1", tags=["events"])


@router.post("/events", status_code=202)
def publish_event(body: EventPublish, _service: ServiceDep, producer: ProducerDep) -> dict:
    """Validate one event and hand it to the fan-out queue (service tokens only).

    400 names what is wrong with the event; 503 when the broker did not take it (nothing was
    enqueued, so publishing again is safe, and with the same ``event_id`` idempotent).
    """
    event_id = producer.publish(body.repository, body.event, body.data,
                                performer=body.performer, event_id=body.event_id)
    return {"event_id": event_id}
