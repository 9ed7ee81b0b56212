"""The collection engine's lake record: a collected event as a flat `collected_events` row.

The table and its columns are in the lake's catalogue (`ecrm.core.lake.COLLECTED_EVENT_COLUMNS`);
which of a message's members reach the lake, and how, is the collection engine's rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ecrm.collect.models import CollectedEvent
from ecrm.core.lake import compact_json, lake_timestamp

# What of a tracking call's `context` the lake keeps (Segment's context fields): the device class,
# the page without its query string, the campaign, the library. Never the IP address, the user agent,
# context traits, location, or device and advertising ids: personal data the lake has no use for.
LAKE_CONTEXT_FIELDS: dict[str, frozenset[str] | None] = {
    "app": frozenset({"name", "version", "build", "namespace"}),
    "campaign": None,
    "channel": None,
    "device": frozenset({"type", "manufacturer", "model"}),
    "library": None,
    "locale": None,
    "os": frozenset({"name", "version"}),
    "page": frozenset({"path", "referrer", "title", "url"}),
    "screen": frozenset({"width", "height", "density"}),
    "timezone": None,
}


def lake_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """The members of `context` the lake keeps (`LAKE_CONTEXT_FIELDS`); URLs lose their query and fragment."""
    kept: dict[str, Any] = {}
    for name, members in LAKE_CONTEXT_FIELDS.items():
        value = context.get(name)
        if value is None:
            continue
        if members is None:
            kept[name] = value
        elif isinstance(value, Mapping):
            chosen = {k: v for k, v in value.items() if k in members}
            if name == "page":
                chosen = {k: _without_query(v) if k in {"url", "referrer"} else v for k, v in chosen.items()}
            if chosen:
                kept[name] = chosen
    return kept


def _without_query(url: Any) -> Any:
    """A URL without `?query` and `#fragment` (where forms and links put emails and tokens)."""
    return url.split("#", 1)[0].split("?", 1)[0] if isinstance(url, str) else url


def collected_event_record(event: CollectedEvent) -> dict[str, Any]:
    """The flat lake record of a collected event, as its Firehose stream receives it (JSON).

    Personal values stay out: `traits` holds the names of the traits the call carried (their values
    are the customer store's, which erasure reaches), `context` only `LAKE_CONTEXT_FIELDS`. What
    remains of a customer is keyed by their tracked ids, and erasure deletes those rows
    (`ecrm.collect.erasure`).
    """
    return {
        "message_id": event.message_id,
        "type": event.type,
        "source_id": event.source_id,
        "source_name": event.source_name,
        "user_id": event.user_id,
        "anonymous_id": event.anonymous_id,
        "event": event.event,
        "name": event.name,
        "category": event.category,
        "properties": compact_json(event.properties),
        "traits": compact_json(sorted(event.traits)),
        "context": compact_json(lake_context(event.context)),
        "timestamp": lake_timestamp(event.timestamp),
        "original_timestamp": lake_timestamp(event.original_timestamp),
        "sent_at": lake_timestamp(event.sent_at),
        "received_at": lake_timestamp(event.received_at),
    }
