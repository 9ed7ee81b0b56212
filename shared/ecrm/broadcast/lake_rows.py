"""Broadcast's message events as rows of the lake's `message_outcomes` table (`ecrm.core.lake.MESSAGE_OUTCOME_COLUMNS`),
written by the outcome counter from the table's stream (`ecrm.broadcast.outcome_counts`).

One row per event: a status change of a message or an engagement (opened, clicked). `event_id` identifies a
row, so a reader keeps one row per id however often Lambda handed its record. The source is split into
its kind (`campaign`, `journey`, `trigger`, `api`) and id so a query groups by campaign or journey without
parsing; ids and codes only, never an address or the content.
"""

from __future__ import annotations

from typing import Any

from ecrm.broadcast.models import MessageEvent
from ecrm.core.lake import lake_timestamp


def message_outcome_row(event_id: str, detail_type: str, event: MessageEvent) -> dict[str, Any]:
    kind, _, source_id = event.source_ref.partition(":")
    return {
        "event_id": event_id,
        "message_id": event.message_id,
        "customer_id": event.customer_id,
        "event_type": detail_type,
        "status": event.status,
        "channel": event.channel,
        "purpose": event.purpose,
        "topic": event.topic,
        "source": event.source_ref,
        "source_kind": kind,
        "source_id": source_id,
        "step": event.step,
        "reason": event.reason,
        "occurred_at": lake_timestamp(event.occurred_at),
    }
