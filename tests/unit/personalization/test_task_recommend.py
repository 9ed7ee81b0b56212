"""The recommend function another engine invokes: a valid ask answers the service's list as JSON; a bad
payload is refused with what is wrong, and the service is not asked."""

from __future__ import annotations

from typing import Any

import pytest
from ecrm.core.errors import InvalidInput
from ecrm.personalization.service_models import Recommendations, RecommendedItem

from functions.personalization import task_recommend

CUSTOMER = "cus_" + "0" * 26


class FakeRecommendations:
    def __init__(self) -> None:
        self.asked: list[tuple[str, str, str | None, int]] = []

    def recommend(self, customer_id: str, *, slot: Any, item: str | None, k: int) -> Recommendations:
        self.asked.append((customer_id, slot, item, k))
        return Recommendations(
            customer_id=customer_id,
            slot=slot,
            model_version="v1",
            strategy="popular",
            note="no history yet: popular items",
            items=[RecommendedItem(item_id="sku-1", name="Teapot")],
        )


def test_an_ask_answers_the_services_list(lambda_context: Any) -> None:
    service = FakeRecommendations()
    handler: Any = task_recommend.handler
    answer = handler({"operation": "recommend", "customer_id": CUSTOMER, "k": 5}, lambda_context, service)
    assert service.asked == [(CUSTOMER, "for_you", None, 5)]
    assert answer["items"][0]["item_id"] == "sku-1"
    assert answer["strategy"] == "popular"


@pytest.mark.parametrize(
    "payload",
    [
        {"operation": "delete", "customer_id": CUSTOMER},
        {"operation": "recommend", "customer_id": "cus 1"},
        {"operation": "recommend", "customer_id": CUSTOMER, "k": 500},
        {"operation": "recommend", "customer_id": CUSTOMER, "extra": True},
    ],
)
def test_a_bad_payload_is_refused_and_nothing_is_asked(payload: dict[str, Any], lambda_context: Any) -> None:
    service = FakeRecommendations()
    handler: Any = task_recommend.handler
    with pytest.raises(InvalidInput):
        handler(payload, lambda_context, service)
    assert service.asked == []
