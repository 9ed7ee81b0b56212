"""The platform slice's contract: its API bodies, its event and its stored record."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

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


class PingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, max_length=200, description="Free text echoed back by the ping")


class PingAccepted(BaseModel):
    ping_id: str
    status: Literal["requested"] = "requested"


class PingRecord(BaseModel):
    ping_id: str
    message: str
    requested_by: str
    requested_at: datetime
    received_at: datetime
    round_trip_ms: int
    status: Literal["received"] = "received"


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    service: str
    version: str
    stage: str


class WhoAmI(BaseModel):
    subject: str
    username: str | None
    email: str | None
    groups: list[str]
    customer_id: str | None
