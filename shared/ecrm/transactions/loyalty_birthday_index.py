"""The loyalty table's birthday index (key design in `loyalty_store`): each member's birthday as the customer
store's profile events last said it, and one partition per day of the year that the birthday job reads."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

BIRTHDAY_SK = "BIRTHDAY"


def birthday_key(day: str, customer_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"BIRTHDAY#{day}"}, "sk": {"S": customer_id}}


class BirthdayIndex:
    client: Any
    table: str

    def note_birthday(self, customer_id: str, day: str | None, profile_version: int) -> bool:
        """Keep the customer's birthday (month-day, or None: none known) as of `profile_version`; False when a
        newer profile was noted already (profile events arrive in any order)."""
        pk = _member_pk(customer_id)
        item = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": BIRTHDAY_SK}}, ConsistentRead=True
        ).get("Item")
        kept_day = item.get("day", {}).get("S") if item else None
        if (item and int(item["version"]["N"]) >= profile_version) or (not item and not day):
            return False
        pointer: dict[str, Any] = {"pk": {"S": pk}, "sk": {"S": BIRTHDAY_SK}, "version": {"N": str(profile_version)}}
        if day:
            pointer["day"] = {"S": day}
        actions: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": pointer,
                    "ConditionExpression": "attribute_not_exists(pk) OR #version < :v",
                    "ExpressionAttributeNames": {"#version": "version"},
                    "ExpressionAttributeValues": {":v": {"N": str(profile_version)}},
                }
            }
        ]
        if kept_day and kept_day != day:
            actions.append({"Delete": {"TableName": self.table, "Key": birthday_key(kept_day, customer_id)}})
        if day and day != kept_day:
            actions.append({"Put": {"TableName": self.table, "Item": birthday_key(day, customer_id)}})
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            from ecrm.transactions.loyalty_store import _failed_conditions  # the store's reading of a cancellation

            if _failed_conditions(exc) is None:
                raise
            return False  # a newer profile was noted meanwhile; its own event keeps the index right
        return True

    def birthdays_on(self, day: str) -> list[str]:
        """The customers whose birthday is `day` (month-day)."""
        return [
            item["sk"]["S"]
            for page in self.client.get_paginator("query").paginate(
                TableName=self.table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": f"BIRTHDAY#{day}"}},
            )
            for item in page.get("Items", [])
        ]

    def birthday_removal(self, customer_id: str) -> list[dict[str, Any]]:
        """The deletes (for a transaction) that take the customer's birthday out of the index: a merged customer's
        birthday is the survivor's business now, and would otherwise earn the survivor a second bonus a year."""
        key = {"pk": {"S": _member_pk(customer_id)}, "sk": {"S": BIRTHDAY_SK}}
        item = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        if not item:
            return []
        deletes = [{"Delete": {"TableName": self.table, "Key": key}}]
        if "day" in item:
            deletes.append({"Delete": {"TableName": self.table, "Key": birthday_key(item["day"]["S"], customer_id)}})
        return deletes


def _member_pk(customer_id: str) -> str:
    return f"MEMBER#{customer_id}"  # `loyalty_store.member_pk`, which imports this module
