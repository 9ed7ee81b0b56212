"""The customer store's contact cards and consent writes, asked of their owner (ADR 12: never a copy).

Broadcast invokes the customer store's contacts function: `cards` before every decision and again just
before every provider call (a withdrawal seconds before the send is honoured), `record_consents` when a
customer unsubscribes through broadcast (one click, the preference centre, an SMS STOP, a complaint).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ecrm.core.errors import ServiceUnavailable

MAX_CARDS_PER_CALL = 100


class Contacts(Protocol):
    def cards(self, customer_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Asked id -> its card (a merged id answers with the survivor's); unknown and erased ids are absent."""
        ...

    def record_consents(
        self, customer_id: str, consents: Sequence[Mapping[str, str]], *, proof: Mapping[str, Any], recorded_by: str
    ) -> dict[str, Any]: ...


class LambdaContacts:
    """The contacts function through `lambda:InvokeFunction` (a synchronous request/response)."""

    def __init__(self, client: Any, function_name: str) -> None:
        self.client = client
        self.function_name = function_name

    def cards(self, customer_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        ids = list(dict.fromkeys(customer_ids))
        for start in range(0, len(ids), MAX_CARDS_PER_CALL):
            answer = self._invoke({"operation": "cards", "customer_ids": ids[start : start + MAX_CARDS_PER_CALL]})
            found.update(answer.get("cards") or {})
        return found

    def record_consents(
        self, customer_id: str, consents: Sequence[Mapping[str, str]], *, proof: Mapping[str, Any], recorded_by: str
    ) -> dict[str, Any]:
        answer = self._invoke(
            {
                "operation": "record_consents",
                "customer_id": customer_id,
                "consents": [dict(c) for c in consents],
                "proof": dict(proof),
                "recorded_by": recorded_by,
            }
        )
        return dict(answer.get("card") or {})

    def _invoke(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        response = self.client.invoke(FunctionName=self.function_name, Payload=json.dumps(payload).encode())
        body = response["Payload"].read()
        if response.get("FunctionError"):
            raise ServiceUnavailable(f"the contacts function failed: {body[:300]!r}")
        answer = json.loads(body or b"{}")
        if not isinstance(answer, dict):
            raise ServiceUnavailable("the contacts function answered something other than an object")
        return answer
