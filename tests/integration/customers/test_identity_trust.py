"""The identity trust model (ADR 9): what a client source's claims may and may not do to customers.

A web or mobile source's write key ships in pages and apps, so anyone holds it. Its identify calls
are claims unless the site's backend signed the user id. These tests are the attacks and the
legitimate journeys side by side, on the real store (moto DynamoDB).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ecrm.collect.models import CollectedEvent
from ecrm.customers.models import CustomerUpsert, IdentityIn
from ecrm.customers.service import CustomerService
from ecrm.customers.stitching import CLAIMED_INTERACTION, Stitcher

from tests.integration.customers.conftest import RecordingPublisher

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
VICTIM_EMAIL = "victim@example.com"


def collected(n: int, type_: str, trust: str, **fields: Any) -> CollectedEvent:
    return CollectedEvent.model_validate(
        {
            "message_id": f"m-{n}",
            "type": type_,
            "source_id": "src_1",
            "source_name": "shopweb",
            "identity_trust": trust,
            "timestamp": T0 + timedelta(minutes=n),
            "received_at": T0 + timedelta(minutes=n, seconds=1),
            **fields,
        }
    )


def identity_set(service: CustomerService, customer_id: str) -> set[tuple[str, str, str]]:
    return {(i.type, i.namespace, i.value) for i in service.get(customer_id).identities}


def timeline_types(service: CustomerService, customer_id: str) -> list[str]:
    items, _ = service.timeline(customer_id, limit=50, cursor=None)
    return [i.type for i in reversed(items)]


@pytest.fixture
def victim(service: CustomerService) -> str:
    record = CustomerUpsert(
        source="erp",
        identities=[IdentityIn(type="email", value=VICTIM_EMAIL), IdentityIn(type="phone", value="+4915112345678")],
        attributes={"first_name": "Vera", "city": "Berlin"},
    )
    return service.upsert(record, actor="test").customer_id


@pytest.fixture
def attacker(service: CustomerService) -> str:
    """An attacker with an account of their own on the shop, signed in on their browser `anon-att`."""
    signed_in = Stitcher(service).apply(collected(0, "identify", "verified", anonymous_id="anon-att", user_id="att"))
    assert signed_in.customer_id is not None
    return signed_in.customer_id


def test_an_unverified_identify_naming_a_victims_email_merges_nothing_and_changes_no_one(
    service: CustomerService, publisher: RecordingPublisher, victim: str, attacker: str
) -> None:
    # Given the victim and the attacker as they are
    before = service.get(victim)
    attacker_ids = identity_set(service, attacker)
    # When the attacker's browser, with the public write key, claims the victim's email
    outcome = Stitcher(service).apply(
        collected(
            1,
            "identify",
            "unverified",
            anonymous_id="anon-att",
            traits={"email": VICTIM_EMAIL, "phone": "+4915199999999", "firstName": "Mallory"},
        )
    )
    # Then nobody merged, the victim is exactly as before, the attacker gained no identity
    assert publisher.of("CustomersMerged") == []
    assert service.get(victim) == before
    assert identity_set(service, attacker) == attacker_ids
    assert service.store.owners_of([f"email:{VICTIM_EMAIL}"]) == {f"email:{VICTIM_EMAIL}": victim}
    # And what was said is kept on the attacker's own record as claims, visible to staff
    assert outcome.customer_id == attacker
    claims = {(c.field, c.value) for c in service.get(attacker).claims}
    assert claims == {("email", VICTIM_EMAIL), ("phone", "+4915199999999"), ("first_name", "Mallory")}
    assert timeline_types(service, attacker)[-1] == CLAIMED_INTERACTION
    assert "first_name" not in service.get(attacker).profile


def test_the_victims_email_still_resolves_to_the_victim(service: CustomerService, victim: str, attacker: str) -> None:
    Stitcher(service).apply(
        collected(1, "identify", "unverified", anonymous_id="anon-att", traits={"email": VICTIM_EMAIL})
    )
    assert service.lookup(IdentityIn(type="email", value=VICTIM_EMAIL)).customer_id == victim


def test_an_unsigned_user_id_is_a_claim_and_never_reaches_that_users_timeline(
    service: CustomerService, attacker: str
) -> None:
    stitcher = Stitcher(service)
    # Given a real shop user u-7 (signed in once, verified)
    user = stitcher.apply(collected(1, "identify", "verified", anonymous_id="anon-7", user_id="u-7")).customer_id
    assert user is not None
    # When someone else sends events naming u-7 without a signature, with and without their own device
    alone = stitcher.apply(collected(2, "track", "unverified", user_id="u-7", event="Order Completed"))
    on_device = stitcher.apply(collected(3, "page", "unverified", user_id="u-7", anonymous_id="anon-x"))
    # Then nothing lands on u-7: the first is ignored, the second waits under its anonymous id
    assert alone.ignored
    assert on_device.held
    assert timeline_types(service, user) == []
    # And an unsigned identify naming u-7 does not link anon-x to u-7
    stitcher.apply(collected(4, "identify", "unverified", user_id="u-7", anonymous_id="anon-x"))
    assert ("device_id", "anon", "anon-x") not in identity_set(service, user)


def test_a_verified_identify_links_the_anonymous_journey_and_keeps_traits_as_claims(
    service: CustomerService, victim: str
) -> None:
    stitcher = Stitcher(service)
    # Given an anonymous visitor who browsed, and said (unsigned) who they are
    stitcher.apply(collected(1, "page", "unverified", anonymous_id="anon-42", name="Home"))
    stitcher.apply(collected(2, "track", "unverified", anonymous_id="anon-42", event="Product Viewed"))
    held = stitcher.apply(collected(3, "identify", "unverified", anonymous_id="anon-42", traits={"email": "v@x.io"}))
    assert held.held
    # When the site's backend vouches for the user id (a valid userHash), with traits naming the victim's email
    signed = stitcher.apply(
        collected(
            4,
            "identify",
            "verified",
            anonymous_id="anon-42",
            user_id="u-42",
            traits={"email": VICTIM_EMAIL, "firstName": "Vic"},
        )
    )
    # Then the customer the site named owns the anonymous journey and the device
    assert signed.customer_id is not None
    assert signed.customer_id != victim
    assert signed.stitched == 3
    assert identity_set(service, signed.customer_id) == {
        ("device_id", "anon", "anon-42"),
        ("external_id", "shopweb", "u-42"),
    }
    assert timeline_types(service, signed.customer_id) == ["page_view", "product_viewed", CLAIMED_INTERACTION]
    # And every trait, earlier or now, is a claim: no email identity, no profile change, no merge
    customer = service.get(signed.customer_id)
    assert customer.profile == {}
    assert {(c.field, c.value) for c in customer.claims} == {
        ("email", "v@x.io"),
        ("email", VICTIM_EMAIL),
        ("first_name", "Vic"),
    }
    assert service.get(victim).merged_ids == []


def test_a_verified_alias_links_only_a_device_and_an_unverified_one_nothing(
    service: CustomerService, publisher: RecordingPublisher
) -> None:
    stitcher = Stitcher(service)
    # Given two shop users, each signed in once
    first = stitcher.apply(collected(1, "identify", "verified", anonymous_id="a-1", user_id="u-1")).customer_id
    second = stitcher.apply(collected(2, "identify", "verified", anonymous_id="a-2", user_id="u-2")).customer_id
    # When aliases name the other user's id as the previous id
    unverified = stitcher.apply(collected(3, "alias", "unverified", previous_id="u-1", user_id="u-2"))
    verified = stitcher.apply(collected(4, "alias", "verified", previous_id="u-1", user_id="u-2"))
    # Then no merge: the unverified alias is ignored, the verified one only links a device named u-1
    assert unverified.ignored
    assert verified.customer_id == second
    assert publisher.of("CustomersMerged") == []
    assert ("external_id", "shopweb", "u-1") in identity_set(service, first or "")
    assert ("external_id", "shopweb", "u-1") not in identity_set(service, second or "")


def test_a_trusted_source_merges_and_the_merge_names_the_message_that_caused_it(
    service: CustomerService, publisher: RecordingPublisher, victim: str
) -> None:
    stitcher = Stitcher(service)
    web = stitcher.apply(collected(1, "identify", "trusted", user_id="u-9", anonymous_id="a-9")).customer_id
    merged = stitcher.apply(collected(2, "identify", "trusted", user_id="u-9", traits={"email": VICTIM_EMAIL}))
    assert merged.customer_id == min(victim, web or "")
    [event] = publisher.of("CustomersMerged")
    assert event.merged_by == "collect:shopweb/m-2"
    [record] = service.store.merges(merged.customer_id or "")
    assert record.merged_by == "collect:shopweb/m-2"
