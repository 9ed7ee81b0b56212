"""An engine's consumer of erasure requests: its part of the erasure done, then its acknowledgement published.

Every participant answers `CustomerErasureRequested` the same way: `erase(request)` deletes or anonymises
what the engine holds and answers its `CustomerDataErased` acknowledgement, which is published after the
work. A lost acknowledgement is sent again by the queue's retry of the request, which finds nothing left to
change. An engine's `on_erasure_requested` module is then its configuration and `erasure_handler(...)`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, Protocol

from ecrm.core import aws
from ecrm.core.config import FunctionConfig
from ecrm.core.consumer import EventConsumer, ReceivedEvent
from ecrm.core.erasure import CustomerErasureRequested
from ecrm.core.events import DomainEvent
from ecrm.core.observability import Observability
from ecrm.core.publisher import EventPublisher


class ErasureParticipant(Protocol):
    def erase(self, request: CustomerErasureRequested) -> DomainEvent: ...


ErasureHandler = Callable[..., dict[str, Any]]


def erasure_handler(
    config: FunctionConfig, bus_name: str, participant: Callable[[], ErasureParticipant]
) -> ErasureHandler:
    """The Lambda handler of an engine's erasure consumer; tests inject `(participant, publisher)`."""
    obs = Observability(config)
    consumer = EventConsumer(obs.logger, accepts=[CustomerErasureRequested])

    @cache
    def publisher() -> EventPublisher:
        return EventPublisher(bus_name, aws.client("events"))

    @obs.entrypoint()
    def handler(
        event: dict[str, Any], context: Any, injected: tuple[ErasureParticipant, EventPublisher] | None = None
    ) -> dict[str, Any]:
        erasure, acks = injected or (participant(), publisher())

        def on_event(received: ReceivedEvent[Any]) -> None:
            ack = erasure.erase(received.data)
            acks.publish_all([ack], correlation_id=received.metadata.correlation_id)

        return consumer(event, context, on_event)

    return handler
