"""Where each customer lives in time, asked of the customer store when the birthday job runs (never a copy).

A birthday is today in the customer's own zone, which the customer store keeps with their preferences; the
birthday job asks its contacts function for the cards of the customers whose birthday is near (as broadcast
and journeys ask it). An id the store does not answer (unknown, erased) is left out; a customer without a
zone celebrates in UTC. Without a contacts function configured, every customer celebrates in UTC.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

from ecrm.core.errors import ServiceUnavailable

CARDS_PER_CALL = 100


class TimeZones(Protocol):
    def zones(self, customer_ids: Sequence[str]) -> dict[str, str | None]:
        """Asked id -> its IANA zone (None: not known); ids the customer store does not know are absent."""
        ...


class UtcEverywhere:
    def zones(self, customer_ids: Sequence[str]) -> dict[str, str | None]:
        return dict.fromkeys(customer_ids)


class CardTimeZones:
    """The customer store's contacts function (`{"operation": "cards"}`) through `lambda:InvokeFunction`."""

    def __init__(self, client: Any, function_name: str) -> None:
        self.client = client
        self.function_name = function_name

    def zones(self, customer_ids: Sequence[str]) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        ids = list(dict.fromkeys(customer_ids))
        for start in range(0, len(ids), CARDS_PER_CALL):
            asked = ids[start : start + CARDS_PER_CALL]
            payload = json.dumps({"operation": "cards", "customer_ids": asked}).encode()
            response = self.client.invoke(FunctionName=self.function_name, Payload=payload)
            body = response["Payload"].read()
            if response.get("FunctionError"):
                raise ServiceUnavailable(f"the contacts function failed: {body[:300]!r}")
            cards = (json.loads(body or b"{}") or {}).get("cards") or {}
            for customer_id in asked:
                card = cards.get(customer_id)
                if isinstance(card, dict):
                    found[customer_id] = (card.get("preferences") or {}).get("time_zone")
        return found
