"""Anonymous browsing, then sign-in: the pre-sign-in events end up on the known customer.

These events come from a trusted (server-side) source; what client sources may do is in
`test_identity_trust.py`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ecrm.collect.models import CollectedEvent
from ecrm.customers.service import CustomerService
from ecrm.customers.stitching import Stitcher, interaction_type

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def collected(n: int, type_: str, **fields: Any) -> CollectedEvent:
    return CollectedEvent.model_validate(
        {
            "message_id": f"m-{n}",
            "type": type_,
            "source_id": "src_1",
            "source_name": "shopweb",
            "identity_trust": "trusted",
            "timestamp": T0 + timedelta(minutes=n),
            "received_at": T0 + timedelta(minutes=n, seconds=1),
            **fields,
        }
    )


def timeline_types(service: CustomerService, customer_id: str) -> list[str]:
    items, _ = service.timeline(customer_id, limit=50, cursor=None)
    return [i.type for i in reversed(items)]


def test_anonymous_browsing_then_sign_in_keeps_the_whole_journey(service: CustomerService) -> None:
    stitcher = Stitcher(service)
    # Given an unknown visitor who browses and adds to cart
    for n, (kind, extra) in enumerate(
        [("page", {"name": "Home"}), ("track", {"event": "Product Viewed"}), ("track", {"event": "Product Added"})]
    ):
        outcome = stitcher.apply(collected(n, kind, anonymous_id="anon-42", **extra))
        assert outcome.held
    # When they sign in (identify with their user id and email, on the same device)
    signed_in = stitcher.apply(
        collected(
            10,
            "identify",
            anonymous_id="anon-42",
            user_id="u-7",
            traits={"email": "Visitor@Example.com", "firstName": "Vic", "address": {"city": "Porto", "country": "PT"}},
        )
    )
    # Then the customer exists, is known by all three identities, and owns the earlier events
    assert signed_in.customer_id is not None
    assert signed_in.stitched == 3
    customer = service.get(signed_in.customer_id)
    assert {(i.type, i.namespace, i.value) for i in customer.identities} == {
        ("device_id", "anon", "anon-42"),
        ("external_id", "shopweb", "u-7"),
        ("email", "", "visitor@example.com"),
    }
    assert {k: v.value for k, v in customer.profile.items()} == {"first_name": "Vic", "city": "Porto", "country": "PT"}
    assert timeline_types(service, customer.customer_id) == ["page_view", "product_viewed", "product_added"]
    assert service.store.held_anonymous("anon-42") == []
    # And later anonymous-only events on that device go straight to the customer
    later = stitcher.apply(collected(20, "track", anonymous_id="anon-42", event="Checkout Started"))
    assert later.customer_id == customer.customer_id
    assert timeline_types(service, customer.customer_id)[-1] == "checkout_started"


def test_a_redelivered_event_is_on_the_timeline_once(service: CustomerService) -> None:
    stitcher = Stitcher(service)
    event = collected(1, "track", user_id="u-1", event="Order Completed")
    first = stitcher.apply(event)
    stitcher.apply(event)
    assert timeline_types(service, first.customer_id or "") == ["order_completed"]


def test_alias_links_the_previous_anonymous_id(service: CustomerService) -> None:
    stitcher = Stitcher(service)
    stitcher.apply(collected(1, "page", anonymous_id="anon-9", name="Pricing"))
    linked = stitcher.apply(collected(2, "alias", previous_id="anon-9", user_id="u-9"))
    assert linked.stitched == 1
    assert timeline_types(service, linked.customer_id or "") == ["page_view"]
    again = stitcher.apply(collected(3, "track", user_id="u-9", event="Signed Up"))
    assert again.customer_id == linked.customer_id


def test_a_user_seen_on_two_devices_is_one_customer(service: CustomerService) -> None:
    stitcher = Stitcher(service)
    a = stitcher.apply(collected(1, "identify", anonymous_id="phone-1", user_id="u-5"))
    b = stitcher.apply(collected(2, "track", anonymous_id="laptop-1", user_id="u-5", event="Cart Viewed"))
    assert a.customer_id == b.customer_id
    assert stitcher.apply(collected(3, "page", anonymous_id="laptop-1")).customer_id == a.customer_id


def test_event_names_become_timeline_types() -> None:
    assert interaction_type(collected(1, "track", user_id="u", event="Order Completed")) == "order_completed"
    assert interaction_type(collected(1, "track", user_id="u", event="2FA enabled!")) == "event_2fa_enabled"
    assert interaction_type(collected(1, "screen", user_id="u")) == "screen_view"
