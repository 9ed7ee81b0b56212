"""Recommendations beside a comparison: asked of the personalization engine's recommend function, taken when
they arrive in time, and an empty list with the reason whenever the recommender fails, answers something else
or is late (the comparison never fails with it)."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

import pytest
from ecrm.transactions.catalog import Recommendations
from ecrm.transactions.catalog_recommendations import LambdaRecommender, RecommendationsBeside, RecommenderFailed

ANSWER = {
    "customer_id": "cus_1",
    "slot": "for_you",
    "item_id": None,
    "model_version": "v1",
    "strategy": "personal",
    "note": "from the customer's recent items",
    "items": [{"item_id": "sku-1", "name": "Teapot", "price": 19.5, "currency": "EUR", "added_later": 1}],
}


class FakeLambda:
    def __init__(self, body: bytes, *, function_error: str | None = None) -> None:
        self.body = body
        self.function_error = function_error
        self.invoked: list[dict[str, Any]] = []

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.invoked.append({"FunctionName": kwargs["FunctionName"], **json.loads(kwargs["Payload"])})
        response: dict[str, Any] = {"StatusCode": 200, "Payload": io.BytesIO(self.body)}
        if self.function_error:
            response["FunctionError"] = self.function_error
        return response


def test_the_recommend_function_is_asked_for_the_customers_list_and_its_items_are_kept() -> None:
    client = FakeLambda(json.dumps(ANSWER).encode())
    answer = LambdaRecommender(client, "ecrm-recommend").recommend("cus_1", 5)
    assert client.invoked == [
        {"FunctionName": "ecrm-recommend", "operation": "recommend", "customer_id": "cus_1", "slot": "for_you", "k": 5}
    ]
    assert [(i.item_id, i.name, i.price) for i in answer.items] == [("sku-1", "Teapot", 19.5)]
    assert (answer.strategy, answer.note) == ("personal", "from the customer's recent items")


@pytest.mark.parametrize(
    ("body", "error"),
    [(b'{"errorMessage": "boom"}', "Unhandled"), (b"[1, 2]", None), (b'{"items": [{"name": "no id"}]}', None)],
)
def test_a_failed_or_malformed_answer_is_a_recommender_failure(body: bytes, error: str | None) -> None:
    with pytest.raises(RecommenderFailed):
        LambdaRecommender(FakeLambda(body, function_error=error), "f").recommend("cus_1", 5)


class Broken:
    def recommend(self, customer_id: str, k: int) -> Recommendations:
        raise RecommenderFailed("the recommend function failed")


class Held:
    """Answers only once released: a recommender slower than the budget."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def recommend(self, customer_id: str, k: int) -> Recommendations:
        self.release.wait()
        return Recommendations(note="late")


class Ready:
    def recommend(self, customer_id: str, k: int) -> Recommendations:
        return Recommendations(note=f"{k} for {customer_id}")


def test_an_answer_in_time_is_taken() -> None:
    beside = RecommendationsBeside(Ready(), k=3)
    assert beside.collect(beside.ask("cus_1")).note == "3 for cus_1"


def test_a_failing_recommender_leaves_an_empty_list_with_the_reason_and_is_reported() -> None:
    reported: list[str] = []
    beside = RecommendationsBeside(Broken(), on_failure=reported.append)
    answer = beside.collect(beside.ask("cus_1"))
    assert (answer.items, answer.note) == ([], "no recommendations: the recommender failed (RecommenderFailed)")
    assert reported == ["the recommender failed (RecommenderFailed)"]


def test_a_late_recommender_is_not_waited_for() -> None:
    held = Held()
    beside = RecommendationsBeside(held, budget_seconds=0.01)
    try:
        answer = beside.collect(beside.ask("cus_1"))
    finally:
        held.release.set()
    assert (answer.items, answer.note) == ([], "no recommendations: the recommender did not answer within 10 ms")


def test_without_a_recommender_nothing_is_asked() -> None:
    beside = RecommendationsBeside(None)
    assert beside.collect(beside.ask("cus_1")).note == "no recommender is configured"
