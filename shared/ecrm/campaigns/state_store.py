"""Customers' states in journeys, in the campaigns engine's table (see `store` for the rest of its keys).

- `JOURNEY#<id>` / `CUST#<pass>`: the customer's state in the journey as JSON plus `version` (their last
  pass: `entry` counts the passes). `<pass>` is the customer id, and for a journey with a `reentry_key` the
  customer id, `#` and a digest of the key's value (`JourneyState.pass_id`): one item per value. While they
  wait with a wake time, `by_kind_pk = WAKE` and `by_kind_sk = <wake_at ISO>#<journey id>#<pass>`: the waits
  due by now, oldest first, from the index (the attributes are left out otherwise, so the index holds only
  waiting customers).
- `CUST#<customer>` / `JOURNEYS`: `active`, how many journeys the customer is in (the cap reads it); a keyed
  pass started while another pass of its journey was under way does not count (`JourneyState.counted`).
- `JOURNEY#<id>` / `STATS`: counters `entered`, `active`, `exit_<reason>`, `step_<step id>` (`exit_erased`: active
  passes an erasure request deleted).
A state, its counters and its events change in one transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from ecrm.campaigns.journeys import JourneyState
from ecrm.campaigns.store import KIND_INDEX, condition_failed, journey_pk
from ecrm.core.events import DomainEvent
from ecrm.core.outbox import OUTBOX_SORT_KEY, Outbox

WAKE = "WAKE"


class StaleState(Exception):
    """The customer's state changed since it was read."""


class JourneyStateStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table = table_name
        self.outbox = Outbox(table_name)

    def state(self, journey_id: str, pass_id: str) -> tuple[JourneyState | None, int | None]:
        """A pass's state by its `pass_id` (the customer id, for a journey without a reentry key)."""
        item = self.client.get_item(
            TableName=self.table,
            Key={"pk": {"S": journey_pk(journey_id)}, "sk": {"S": f"CUST#{pass_id}"}},
            ConsistentRead=True,
        ).get("Item")
        if not item:
            return None, None
        return JourneyState.model_validate_json(item["doc"]["S"]), int(item["version"]["N"])

    def passes(self, journey_id: str, customer_id: str) -> list[tuple[JourneyState, int]]:
        """Every pass of the customer in a keyed journey (`CUST#<customer>` and `CUST#<customer>#<digest>`)."""
        found: list[tuple[JourneyState, int]] = []
        query: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :p AND begins_with(sk, :c)",
            "ExpressionAttributeValues": {":p": {"S": journey_pk(journey_id)}, ":c": {"S": f"CUST#{customer_id}"}},
            "ConsistentRead": True,
        }
        while True:
            response = self.client.query(**query)
            for item in response.get("Items", []):
                state = JourneyState.model_validate_json(item["doc"]["S"])
                if state.customer_id == customer_id:  # `CUST#c1` also begins `CUST#c10`
                    found.append((state, int(item["version"]["N"])))
            if "LastEvaluatedKey" not in response:
                return found
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def active_journeys(self, customer_id: str) -> int:
        item = self.client.get_item(
            TableName=self.table,
            Key={"pk": {"S": f"CUST#{customer_id}"}, "sk": {"S": "JOURNEYS"}},
            ConsistentRead=True,
        ).get("Item")
        return int(item["active"]["N"]) if item and "active" in item else 0

    def due(self, now: datetime, limit: int) -> list[tuple[str, str]]:
        response = self.client.query(
            TableName=self.table,
            IndexName=KIND_INDEX,
            KeyConditionExpression="by_kind_pk = :w AND by_kind_sk <= :now",
            ExpressionAttributeValues={":w": {"S": WAKE}, ":now": {"S": now.isoformat() + "~"}},
            Limit=limit,
        )
        due = []
        for item in response.get("Items", []):
            _, journey_id, pass_id = item["by_kind_sk"]["S"].split("#", 2)  # an ISO time and a journey id hold no #
            due.append((journey_id, pass_id))
        return due

    def save(
        self,
        state: JourneyState,
        *,
        expected_version: int | None,
        entered: bool,
        exited_reason: str | None,
        steps: list[str],
        events: list[DomainEvent],
        now: datetime,
    ) -> None:
        pk = journey_pk(state.journey_id)
        item: dict[str, Any] = {
            "pk": {"S": pk},
            "sk": {"S": f"CUST#{state.pass_id}"},
            "doc": {"S": state.model_dump_json()},
            "version": {"N": str((expected_version or 0) + 1)},
        }
        if state.status == "active" and state.wake_at is not None:
            item["by_kind_pk"] = {"S": WAKE}
            item["by_kind_sk"] = {"S": f"{state.wake_at.isoformat()}#{state.journey_id}#{state.pass_id}"}
        put: dict[str, Any] = {"TableName": self.table, "Item": item}
        if expected_version is None:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "#v = :v"
            put["ExpressionAttributeNames"] = {"#v": "version"}
            put["ExpressionAttributeValues"] = {":v": {"N": str(expected_version)}}
        actions: list[dict[str, Any]] = [{"Put": put}]
        counters: dict[str, int] = {f"step_{step}": 1 for step in steps}
        active_change = (1 if entered else 0) - (1 if exited_reason else 0)
        if entered:
            counters["entered"] = 1
        if exited_reason:
            counters[f"exit_{exited_reason}"] = 1
        if active_change:
            counters["active"] = active_change
            if state.counted:  # each pass takes back from the cap's count only what it added
                actions.append(self._add(f"CUST#{state.customer_id}", "JOURNEYS", {"active": active_change}))
        if counters:
            actions.append(self._add(pk, "STATS", counters))
        if events:
            # under the pass's own key: two passes of one journey never write the same outbox item
            actions.append(self.outbox.put(f"{pk}#CUST#{state.pass_id}", events, correlation_id=None, now=now))
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            if condition_failed(exc):
                raise StaleState(pk) from exc
            raise

    def erase(self, state: JourneyState, version: int) -> None:
        """Delete an erased customer's pass: an active one leaves the journey's `active` count (and the cap's,
        if it counted there) as an exit `erased`; no event, nothing of the customer left. `StaleState` if the
        pass moved since it was read."""
        actions: list[dict[str, Any]] = [
            {
                "Delete": {
                    "TableName": self.table,
                    "Key": {"pk": {"S": journey_pk(state.journey_id)}, "sk": {"S": f"CUST#{state.pass_id}"}},
                    "ConditionExpression": "#v = :v",
                    "ExpressionAttributeNames": {"#v": "version"},
                    "ExpressionAttributeValues": {":v": {"N": str(version)}},
                }
            },
            # the pass's last events, relayed long ago, still name the customer
            {
                "Delete": {
                    "TableName": self.table,
                    "Key": {
                        "pk": {"S": f"{journey_pk(state.journey_id)}#CUST#{state.pass_id}"},
                        "sk": {"S": OUTBOX_SORT_KEY},
                    },
                }
            },
        ]
        if state.status == "active":
            actions.append(self._add(journey_pk(state.journey_id), "STATS", {"active": -1, "exit_erased": 1}))
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            if condition_failed(exc):
                raise StaleState(state.journey_id) from exc
            raise

    def forget_customer(self, customer_id: str) -> None:
        """The customer's count of journeys under way (read by the cap), once every pass of theirs is gone."""
        self.client.delete_item(TableName=self.table, Key={"pk": {"S": f"CUST#{customer_id}"}, "sk": {"S": "JOURNEYS"}})

    def _add(self, pk: str, sk: str, counters: dict[str, int]) -> dict[str, Any]:
        names = {f"#c{i}": name for i, name in enumerate(counters)}
        return {
            "Update": {
                "TableName": self.table,
                "Key": {"pk": {"S": pk}, "sk": {"S": sk}},
                "UpdateExpression": "ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(counters))),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": {f":c{i}": {"N": str(v)} for i, v in enumerate(counters.values())},
            }
        }
