"""The tour's shoppers who started checkout complete an order the transactions API takes."""

from __future__ import annotations

from ecrm.transactions.models import OrderIn
from ecrm_ops.collect.demo_sessions import generate
from ecrm_ops.tour.collect import checkout_order


def test_every_shopper_who_started_checkout_places_their_cart_on_the_web_shop() -> None:
    # Given the tour's generated sessions
    stream = generate(100)
    started = [v for v in stream.visitors if any(m.get("event") == "Checkout Started" for m in v.messages)]
    assert started, "the sessions hold checkouts"
    for visitor in stream.visitors:
        body = checkout_order(visitor, "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2D")
        # Then exactly the shoppers who started checkout order, on the web channel, what they put in the cart
        assert (body is not None) == (visitor in started)
        if body is None:
            continue
        order = OrderIn.model_validate(body)
        checkout = next(m for m in visitor.messages if m.get("event") == "Checkout Started")
        assert order.channel == "web"
        assert sorted(line.sku for line in order.lines) == sorted(set(checkout["properties"]["products"]))
        total = sum(line.quantity * line.unit_price_minor for line in order.lines)
        assert total == round(checkout["properties"]["value"] * 100)
