"""Customers' time zones for the birthday job, asked of the customer store's contacts function: 100 ids per
call, a card's zone (None when it has none), an id without a card left out, a failed call a 503."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from ecrm.core.errors import ServiceUnavailable
from ecrm.transactions.loyalty_zones import CardTimeZones, UtcEverywhere


class Contacts:
    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.asked: list[list[str]] = []

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        ids = json.loads(kwargs["Payload"])["customer_ids"]
        self.asked.append(ids)
        cards = {c: {"preferences": {"time_zone": "Europe/Paris" if c.endswith("1") else None}} for c in ids[:-1]}
        answer: dict[str, Any] = {"Payload": io.BytesIO(json.dumps({"cards": cards}).encode())}
        if self.fail:
            answer["FunctionError"] = "Unhandled"
        return answer


def test_zones_are_read_from_the_cards_a_hundred_ids_a_call() -> None:
    contacts = Contacts()
    ids = [f"cus_{n}" for n in range(150)]
    zones = CardTimeZones(contacts, "contacts").zones(ids)
    assert [len(asked) for asked in contacts.asked] == [100, 50]
    assert zones["cus_1"] == "Europe/Paris"
    assert zones["cus_2"] is None
    assert "cus_99" not in zones  # no card: unknown or erased
    assert "cus_149" not in zones


def test_a_failed_call_is_a_503_and_without_contacts_everyone_is_in_utc() -> None:
    with pytest.raises(ServiceUnavailable):
        CardTimeZones(Contacts(fail=True), "contacts").zones(["cus_1"])
    assert UtcEverywhere().zones(["cus_1"]) == {"cus_1": None}
