"""The local cloud's TransactWriteItems keeps DynamoDB's semantics without copying whole tables."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.exceptions import MultipleTransactionsException, TransactionCanceledException
from moto.dynamodb.models import dynamodb_backends

from infra.local.dynamodb_transactions import transact_write_items


@pytest.fixture
def backend() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="t",
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
        )
        client.put_item(TableName="t", Item={"pk": {"S": "a"}, "sk": {"S": "1"}, "n": {"N": "1"}})
        yield dynamodb_backends["123456789012"]["us-east-1"]


def put(pk: str, condition: str | None = None, **extra: Any) -> dict[str, Any]:
    op: dict[str, Any] = {"TableName": "t", "Item": {"pk": {"S": pk}, "sk": {"S": "1"}, **extra}}
    if condition:
        op["ConditionExpression"] = condition
    return {"Put": op}


def item(backend: Any, pk: str) -> Any:
    return backend.get_item("t", {"pk": {"S": pk}, "sk": {"S": "1"}})


def test_all_writes_apply_when_every_condition_holds(backend: Any) -> None:
    transact_write_items(backend, [put("b", "attribute_not_exists(pk)"), put("c")])
    assert item(backend, "b") is not None
    assert item(backend, "c") is not None


def test_one_failed_condition_cancels_everything_with_a_reason_per_item(backend: Any) -> None:
    with pytest.raises(TransactionCanceledException) as cancelled:
        transact_write_items(backend, [put("b"), put("a", "attribute_not_exists(pk)")])
    assert item(backend, "b") is None
    assert "ConditionalCheckFailed" in str(cancelled.value)
    assert "None" in str(cancelled.value)  # the first item's reason is "None", as DynamoDB reports it


def test_two_operations_on_one_item_are_refused_as_dynamodb_does(backend: Any) -> None:
    check = {
        "ConditionCheck": {
            "TableName": "t",
            "Key": {"pk": {"S": "b"}, "sk": {"S": "1"}},
            "ConditionExpression": "attribute_exists(pk)",
        }
    }
    with pytest.raises(MultipleTransactionsException):
        transact_write_items(backend, [put("b"), check])
    assert item(backend, "b") is None


def test_a_failure_half_way_restores_the_items_already_written(backend: Any) -> None:
    bad_update = {
        "Update": {
            "TableName": "t",
            "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}},
            "UpdateExpression": "SET n = n + :s",
            "ExpressionAttributeValues": {":s": {"S": "x"}},
        }
    }
    with pytest.raises(Exception):  # noqa: B017 - moto's own validation error type
        transact_write_items(backend, [put("z"), bad_update])
    assert item(backend, "z") is None
    assert item(backend, "a").attrs["n"].value == "1"


# -- ClientRequestToken -------------------------------------------------------------------------
def test_a_retry_with_the_same_client_token_is_not_applied_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import ClientError

    from infra.local import dynamodb_transactions

    dynamodb_transactions.install()
    monkeypatch.setattr(dynamodb_transactions, "_tokens", OrderedDict())
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="t",
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        )
        create = [
            {
                "Put": {
                    "TableName": "t",
                    "Item": {"pk": {"S": "cus_1"}, "secret": {"B": b"\x00\xff"}},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Update": {
                    "TableName": "t",
                    "Key": {"pk": {"S": "count"}},
                    "UpdateExpression": "ADD n :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            },
        ]
        # Given a transaction applied, whose answer the client never got (a dropped connection)
        client.transact_write_items(TransactItems=create, ClientRequestToken="token-1")

        # When botocore retries it with the same token, DynamoDB answers success and applies nothing
        client.transact_write_items(TransactItems=create, ClientRequestToken="token-1")
        assert client.get_item(TableName="t", Key={"pk": {"S": "count"}})["Item"]["n"] == {"N": "1"}

        # The same token with other parameters is refused as DynamoDB refuses it
        with pytest.raises(ClientError) as mismatch:
            client.transact_write_items(TransactItems=create[:1], ClientRequestToken="token-1")
        assert mismatch.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"

        # And another token is another request: its condition fails on the customer that exists
        with pytest.raises(ClientError) as cancelled:
            client.transact_write_items(TransactItems=create, ClientRequestToken="token-2")
        assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"


def test_the_client_token_patch_keeps_motos_request_handler_shape() -> None:
    import inspect

    from moto.dynamodb.responses import DynamoHandler

    from infra.local import dynamodb_transactions

    # (a moto upgrade that changes what the patch wraps fails here)
    assert list(inspect.signature(dynamodb_transactions._moto_transact_write_items).parameters) == ["self"]
    assert "self.dynamodb_backend.transact_write_items(transact_items)" in inspect.getsource(
        dynamodb_transactions._moto_transact_write_items
    )
    assert hasattr(DynamoHandler, "transact_write_items")
