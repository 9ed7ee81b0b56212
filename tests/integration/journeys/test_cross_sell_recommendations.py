"""The post-purchase cross-sell's message carries the personalization engine's recommendations: the journey
runtime asks its recommend function (as the wiring does when it is configured), and broadcast's rendering of
the message lists the recommended products; a recommender that fails leaves the general fallback."""

from __future__ import annotations

import io
import json
from typing import Any

from ecrm.broadcast.rendering import render_parts
from ecrm.campaigns.ports import LambdaRecommendations
from ecrm.personalization.service_models import Recommendations, RecommendedItem

from tests.integration.campaigns.conftest import Engine
from tests.integration.journeys.test_library_journeys import active, publish, runtime

CUSTOMER = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"


class RecommendFunction:
    """Stands in for the personalization engine's recommend function: its answer is that engine's own model."""

    def __init__(self, *, fails: bool = False) -> None:
        self.fails = fails
        self.payloads: list[dict[str, Any]] = []

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
        request = json.loads(Payload)
        self.payloads.append(request)
        if self.fails:
            return {"FunctionError": "Unhandled", "Payload": io.BytesIO(b'{"errorMessage": "no model"}')}
        answer = Recommendations(
            customer_id=request["customer_id"],
            slot=request["slot"],
            model_version="v1",
            strategy="personal",
            note="from the customer's history",
            items=[
                RecommendedItem(item_id="TENT-2P", name="Tent", url="https://shop.example/p/tent", price=199.0),
                RecommendedItem(item_id="PEG-10", name="Pegs", url="https://shop.example/p/pegs"),
                RecommendedItem(item_id="MAT-1", name="Mat"),
            ][: request["k"]],
        )
        return {"Payload": io.BytesIO(answer.model_dump_json().encode())}


def test_the_cross_sell_message_lists_the_customer_s_recommended_products(engine: Engine) -> None:
    # Given the cross-sell journey showing two items, with personalization's recommend function wired
    function = RecommendFunction()
    journey = active(engine, "post_purchase_cross_sell", parameters={"days_after": 3, "items": 2})
    run = runtime(engine, LambdaRecommendations(function, "ecrm-recommend"))

    # When the customer orders and the three days pass
    publish(run, "ecrm.transactions", "OrderPlaced", CUSTOMER, order_id="ord_1")
    engine.clock.advance(days=3)
    run.wake()

    # Then the recommender was asked for that customer's two best items, and the message renders them
    assert function.payloads == [{"operation": "recommend", "customer_id": CUSTOMER, "slot": "for_you", "k": 2}]
    message = engine.broadcast.messages[(f"journey:{journey.journey_id}", CUSTOMER, "suggest.1")]
    assert [item["id"] for item in message.data["recommendations"]] == ["TENT-2P", "PEG-10"]
    text = render_parts(message.content["email"], profile={"first_name": "Sam"}, data=message.data)["text"]
    assert text == "Picked for you:\n- Tent https://shop.example/p/tent\n- Pegs https://shop.example/p/pegs\n"


def test_a_failing_recommender_leaves_the_general_fallback(engine: Engine) -> None:
    journey = active(engine, "post_purchase_cross_sell", parameters={"days_after": 1})
    run = runtime(engine, LambdaRecommendations(RecommendFunction(fails=True), "ecrm-recommend"))
    publish(run, "ecrm.transactions", "OrderPlaced", CUSTOMER, order_id="ord_1")
    engine.clock.advance(days=1)
    run.wake()
    message = engine.broadcast.messages[(f"journey:{journey.journey_id}", CUSTOMER, "suggest.1")]
    assert message.data["recommendations"] == []
    assert render_parts(message.content["email"], profile={}, data=message.data)["text"] == (
        "Have a look at what is new in the shop."
    )
