"""The platform slice's contract: its API bodies, its event and its stored record."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field

from ecrm.core.contract import Contract
from ecrm.core.events import DomainEvent

SOURCE = "ecrm.platform"


class PingRequested(DomainEvent):
    """An operator asked for a round trip through the event plumbing."""

    source = SOURCE
    detail_type = "PingRequested"

    ping_id: str
    message: str
    requested_by: str
    requested_at: datetime


class PingRequest(Contract):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, max_length=200, description="Free text echoed back by the ping")


class PingAccepted(Contract):
    ping_id: str
    status: Literal["requested"] = "requested"


class PingRecord(Contract):
    ping_id: str
    message: str
    requested_by: str
    requested_at: datetime
    received_at: datetime
    round_trip_ms: int
    status: Literal["received"] = "received"


class Health(Contract):
    status: Literal["ok"] = "ok"
    service: str
    version: str
    stage: str


class WhoAmI(Contract):
    subject: str
    username: str | None
    email: str | None
    groups: list[str]
    customer_id: str | None
