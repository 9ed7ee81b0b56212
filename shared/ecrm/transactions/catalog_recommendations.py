"""The personalization engine's recommendations beside a comparison, asked of their owner and never waited on.

The personalization engine answers recommendations from its own store; an engine imports no more of another
than its `models`, so a comparison asks that engine's recommend function (`lambda:InvokeFunction`, as
broadcast asks the customer store for contact cards). The ask starts before the comparison's own reads and
runs beside them on a worker thread; the comparison takes whatever arrived within its budget. A recommender
that fails, answers something else or is late leaves the list empty with the reason: the comparison is what
the customer asked for, the recommendations are extra.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Protocol

from pydantic import ValidationError

from ecrm.transactions.catalog import Recommendations, RecommendedItem

RECOMMENDED = 5
BUDGET_SECONDS = 0.15  # beside two DynamoDB reads; a warm recommend function answers in a few milliseconds
SLOT = "for_you"


class Recommender(Protocol):
    def recommend(self, customer_id: str, k: int) -> Recommendations: ...


class RecommenderFailed(Exception):
    """The recommender answered an error or something that is not a list of recommendations."""


class LambdaRecommender:
    """The personalization engine's recommend function through a synchronous `lambda:InvokeFunction`."""

    def __init__(self, client: Any, function_name: str) -> None:
        self.client = client
        self.function_name = function_name

    def recommend(self, customer_id: str, k: int) -> Recommendations:
        payload = {"operation": "recommend", "customer_id": customer_id, "slot": SLOT, "k": k}
        response = self.client.invoke(FunctionName=self.function_name, Payload=json.dumps(payload).encode())
        body = response["Payload"].read()
        if response.get("FunctionError"):
            raise RecommenderFailed(f"the recommend function failed: {body[:300]!r}")
        try:
            answer = json.loads(body or b"{}")
            return Recommendations(
                items=[RecommendedItem.model_validate(item) for item in answer["items"]],
                strategy=answer.get("strategy"),
                note=str(answer.get("note") or "recommended for you"),
            )
        except (ValueError, KeyError, TypeError, ValidationError) as error:
            raise RecommenderFailed(f"the recommend function answered no list of items: {error}") from None


class RecommendationsBeside:
    """Asks the recommender on a worker thread, so its answer arrives while the comparison reads and ranks."""

    def __init__(
        self,
        recommender: Recommender | None,
        *,
        budget_seconds: float = BUDGET_SECONDS,
        k: int = RECOMMENDED,
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        self.recommender = recommender
        self.budget_seconds = budget_seconds
        self.k = k
        self.on_failure = on_failure
        self._workers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="recommend")

    def ask(self, customer_id: str) -> Future[Recommendations] | None:
        if self.recommender is None:
            return None
        return self._workers.submit(self.recommender.recommend, customer_id, self.k)

    def collect(self, asked: Future[Recommendations] | None) -> Recommendations:
        """What arrived within the budget (counted from now: the comparison's own work ran meanwhile)."""
        if asked is None:
            return Recommendations(note="no recommender is configured")
        try:
            return asked.result(timeout=self.budget_seconds)
        except FutureTimeout:
            asked.cancel()
            return self._none(f"the recommender did not answer within {int(self.budget_seconds * 1000)} ms")
        except Exception as error:
            return self._none(f"the recommender failed ({type(error).__name__})")

    def _none(self, reason: str) -> Recommendations:
        if self.on_failure is not None:
            self.on_failure(reason)
        return Recommendations(note=f"no recommendations: {reason}")
