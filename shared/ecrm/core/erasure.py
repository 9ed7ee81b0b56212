"""The erasure protocol (GDPR Art. 17) every engine takes part in.

The customers engine requests an erasure (`CustomerErasureRequested`, from its source), every engine
that holds something on the customer deletes or anonymises it and acknowledges with
`CustomerDataErased` (each from its own source, a subclass in its `models`), and the customers engine
settles the request when all have answered. The events are the customers engine's (they are part of
`ecrm.customers.models` too); they live here because engines that the customers engine itself
consumes (collect) answer them, and an engine's contract must not import back into its consumer's.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from ecrm.core.contract import Contract
from ecrm.core.events import DomainEvent

SOURCE = "ecrm.customers"


class TrackedIds(Contract):
    """The ids tracking calls knew the customer by: what the lake's collected events are keyed by.

    Snapshotted from the customer's identities when the erasure is requested, because the customer
    store erases those identities in its own part, concurrently with the other participants: the
    event, not the store, is where a participant finds them, on every redelivery. Not kept in the
    erasure request's record, so nothing outlives the erasure but the event itself.
    """

    anonymous_ids: list[str] = Field(default_factory=list, description="device ids in the `anon` namespace")
    user_ids: dict[str, list[str]] = Field(
        default_factory=dict, description="source name -> the external ids in that source's namespace"
    )

    def __bool__(self) -> bool:
        return bool(self.anonymous_ids or any(self.user_ids.values()))


class CustomerErasureRequested(DomainEvent):
    """Art. 17 erasure: every engine deletes or anonymises what it holds on these ids and acknowledges."""

    source = SOURCE
    detail_type = "CustomerErasureRequested"

    request_id: str
    customer_id: str
    customer_ids: list[str]
    requested_at: datetime
    tracked_ids: TrackedIds = Field(default_factory=TrackedIds)


class CustomerDataErased(DomainEvent):
    """One engine's acknowledgement of an erasure request (each engine publishes it from its own source)."""

    source = SOURCE
    detail_type = "CustomerDataErased"

    request_id: str
    engine: str
    erased_at: datetime
