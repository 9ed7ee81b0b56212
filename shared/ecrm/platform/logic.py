"""Pure rules of the platform slice."""

from __future__ import annotations

from datetime import datetime

from ecrm.core.auth import Principal
from ecrm.core.ids import new_id
from ecrm.platform.models import PingRecord, PingRequest, PingRequested


def request_ping(body: PingRequest, principal: Principal, now: datetime) -> PingRequested:
    return PingRequested(
        ping_id=new_id("png_"),
        message=body.message,
        requested_by=principal.actor,
        requested_at=now,
    )


def receive_ping(event: PingRequested, now: datetime) -> PingRecord:
    elapsed = max(0, int((now - event.requested_at).total_seconds() * 1000))
    return PingRecord(
        ping_id=event.ping_id,
        message=event.message,
        requested_by=event.requested_by,
        requested_at=event.requested_at,
        received_at=now,
        round_trip_ms=elapsed,
    )
