"""The birthday bonus on moto: customers' birthdays noted from their profile events, given by the hourly job
when the birthday is today in each customer's own zone, once a year whatever the re-runs; 29 February on the
28th in other years; an erased customer's birthday leaves the index."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from ecrm.core.clock import FixedClock
from ecrm.core.events import envelope_for
from ecrm.customers.models import CustomerUpdated, ProfileSnapshot
from ecrm.transactions.loyalty_service import LoyaltyService
from ecrm.transactions.models import LoyaltyRulesIn

from functions.transactions import job_birthday_points, on_order_event
from tests.samples import sqs_batch

AUCKLAND, LOS_ANGELES, NOWHERE = "cus_auckland", "cus_losangeles", "cus_utc"
JOB: Any = job_birthday_points.handler
CONSUMER: Any = on_order_event.handler


class Zones:
    def __init__(self, zones: dict[str, str | None]) -> None:
        self.known = zones

    def zones(self, customer_ids: Any) -> dict[str, str | None]:
        return {c: self.known[c] for c in customer_ids if c in self.known}


ZONES = Zones({AUCKLAND: "Pacific/Auckland", LOS_ANGELES: "America/Los_Angeles", NOWHERE: None})


def balances(loyalty: LoyaltyService) -> dict[str, int]:
    return {c: loyalty.account(c).balance for c in (AUCKLAND, LOS_ANGELES, NOWHERE)}


def test_each_customer_gets_the_bonus_on_their_own_day_once(
    loyalty: LoyaltyService, clock: FixedClock, lambda_context: Any
) -> None:
    # Given three customers born on 5 March, in Auckland, Los Angeles and nowhere known (UTC)
    loyalty.set_rules(LoyaltyRulesIn(birthday_bonus=50), actor="test")
    for customer in (AUCKLAND, LOS_ANGELES, NOWHERE):
        assert loyalty.note_birth_date(customer, date(1990, 3, 5), 1)
    # When the job runs at 12:00 UTC on 4 March (already the 5th in Auckland) and again an hour later
    clock.at = datetime(2027, 3, 4, 12, 0, tzinfo=UTC)
    assert JOB({}, lambda_context, loyalty, ZONES) == {"birthday_points": 50}
    clock.advance(hours=1)
    assert JOB({}, lambda_context, loyalty, ZONES)["birthday_points"] == 0
    assert balances(loyalty) == {AUCKLAND: 50, LOS_ANGELES: 0, NOWHERE: 0}
    # Then UTC's day comes at midnight, Los Angeles's eight hours later; every later run gives nothing more
    clock.at = datetime(2027, 3, 5, 0, 5, tzinfo=UTC)
    assert JOB({}, lambda_context, loyalty, ZONES)["birthday_points"] == 50
    clock.at = datetime(2027, 3, 5, 8, 5, tzinfo=UTC)
    assert JOB({}, lambda_context, loyalty, ZONES)["birthday_points"] == 50
    clock.at = datetime(2027, 3, 5, 23, 5, tzinfo=UTC)
    assert JOB({}, lambda_context, loyalty, ZONES)["birthday_points"] == 0
    assert balances(loyalty) == {AUCKLAND: 50, LOS_ANGELES: 50, NOWHERE: 50}
    assert [line.cause for line in loyalty.account(LOS_ANGELES).statement] == ["birthday:2027"]


def test_a_leap_day_birthday_is_kept_on_the_28th_and_an_unknown_customer_is_left_out(
    loyalty: LoyaltyService, clock: FixedClock, lambda_context: Any
) -> None:
    loyalty.set_rules(LoyaltyRulesIn(birthday_bonus=20), actor="test")
    loyalty.note_birth_date(NOWHERE, date(2000, 2, 29), 1)
    loyalty.note_birth_date("cus_gone", date(2000, 2, 28), 1)
    clock.at = datetime(2027, 2, 28, 9, 0, tzinfo=UTC)
    assert JOB({}, lambda_context, loyalty, ZONES) == {"birthday_points": 20}
    assert loyalty.account("cus_gone").balance == 0


def test_profile_events_move_the_birthday_and_a_late_one_changes_nothing(
    loyalty: LoyaltyService, clock: FixedClock, lambda_context: Any
) -> None:
    loyalty.set_rules(LoyaltyRulesIn(birthday_bonus=50), actor="test")

    def updated(version: int, birth_date: str | None) -> str:
        event = CustomerUpdated(
            customer_id=NOWHERE,
            record_source="web",
            changed=["birth_date"],
            updated_at=clock.now(),
            snapshot=ProfileSnapshot(version=version, attributes={"birth_date": birth_date} if birth_date else {}),
        )
        detail = envelope_for(event, "cor_1", clock.now())
        envelope = {"id": f"eb-{version}", "source": event.source, "detail-type": event.detail_type}
        return json.dumps({**envelope, "time": clock.now().isoformat(), "detail": detail})

    # Given the birthday said to be 1 June (version 3), then a late event of version 2 saying 1 May
    answer = CONSUMER(sqs_batch([updated(3, "1990-06-01"), updated(2, "1990-05-01")]), lambda_context, loyalty)
    assert answer == {"batchItemFailures": []}
    # Then 1 May gives nothing, 1 June gives the bonus
    clock.at = datetime(2027, 5, 1, 12, 0, tzinfo=UTC)
    assert JOB({}, lambda_context, loyalty, ZONES)["birthday_points"] == 0
    clock.at = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)
    assert JOB({}, lambda_context, loyalty, ZONES)["birthday_points"] == 50
    # When the profile no longer has a birth date, the index forgets it
    CONSUMER(sqs_batch([updated(4, None)]), lambda_context, loyalty)
    assert loyalty.store.birthdays_on("06-01") == []


def test_an_erased_customers_birthday_leaves_the_index(loyalty: LoyaltyService) -> None:
    loyalty.note_birth_date(NOWHERE, date(1990, 3, 5), 1)
    loyalty.store.erase_member(NOWHERE)
    assert loyalty.store.birthdays_on("03-05") == []
