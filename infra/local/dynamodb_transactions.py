"""A faster `TransactWriteItems` for moto's DynamoDB, used only by the embedded local cloud.

moto 5.2.5 deep-copies every table a transaction touches, once per item of the transaction,
before it starts, so each transaction costs time proportional to the table's size: an import
of a few thousand customers slows to a crawl. This version keeps DynamoDB's semantics (one
operation per item, every condition checked before anything is written, all or nothing,
cancellation reasons per item) and snapshots only the items it touches.

moto also ignores `ClientRequestToken`, which botocore fills in for every call and keeps across
its retries: in DynamoDB a retry of a transaction that was applied but whose answer was lost
(a dropped connection, a timeout) succeeds without applying it again, for 10 minutes after the
first request; the same token with other parameters is an `IdempotentParameterMismatchException`.
Locally the retry would fail its own conditions instead. Here the token is honoured as DynamoDB
documents it.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import threading
import time
from collections import OrderedDict
from typing import Any

from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ERROR_TYPE_PREFIX,
    DynamodbException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.responses import DynamoHandler

_installed = False
_moto_transact_write_items = DynamoHandler.transact_write_items
TOKEN_WINDOW_SECONDS = 600  # "valid for 10 minutes after the first request that uses it is completed"
# (account, region, token) -> (request, completed), oldest completion first: stale tokens are popped from the front
_tokens: OrderedDict[tuple[str, str, str], tuple[str, float]] = OrderedDict()
_tokens_lock = threading.Lock()


class IdempotentParameterMismatchException(DynamodbException):
    def __init__(self) -> None:
        super().__init__(
            ERROR_TYPE_PREFIX + "IdempotentParameterMismatchException",
            message="Request parameters do not match the ones of the first request with this client token.",
        )


def transact_write_items_request(self: DynamoHandler) -> Any:
    """`TransactWriteItems` as DynamoDB answers it: idempotent for a `ClientRequestToken` seen in 10 minutes."""
    token = self.body.get("ClientRequestToken")
    if not token:
        return _moto_transact_write_items(self)
    request = {k: v for k, v in self.body.items() if k not in {"ClientRequestToken", "ReturnConsumedCapacity"}}
    fingerprint = hashlib.sha256(json.dumps(request, sort_keys=True, default=_json_value).encode()).hexdigest()
    key = (self.current_account, self.region, token)
    # One transaction per token at a time: a retry racing its first attempt waits for it.
    with _tokens_lock:
        now = time.monotonic()
        while _tokens and now - next(iter(_tokens.values()))[1] > TOKEN_WINDOW_SECONDS:
            _tokens.popitem(last=False)
        seen = _tokens.get(key)
        if seen is not None:
            if seen[0] != fingerprint:
                raise IdempotentParameterMismatchException()
            return _moto_transact_write_items_answer()
        result = _moto_transact_write_items(self)
        _tokens[key] = (fingerprint, time.monotonic())
        return result


def _json_value(value: Any) -> str:
    """Binary attribute values (moto hands them over decoded) and anything else JSON lacks, as text."""
    return base64.b64encode(value).decode() if isinstance(value, bytes | bytearray) else repr(value)


def _moto_transact_write_items_answer() -> Any:
    from moto.core.responses import ActionResult

    return ActionResult({"ConsumedCapacity": [], "ItemCollectionMetrics": {}})


def _key_of(backend: DynamoDBBackend, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return dict(op["Key"])
    table = backend.get_table(op["TableName"])
    key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = op["Item"][table.range_key_attr]
    return key


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    operations: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    seen: set[tuple[str, str]] = set()
    for item in transact_items:
        if len(item) > 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(item.items()))
        if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
            raise ValueError("Unsupported transaction operation")
        key = _key_of(self, op_type, op)
        identity = (op["TableName"], str(dict(sorted(key.items()))))
        if identity in seen:
            raise MultipleTransactionsException()
        seen.add(identity)
        operations.append((op_type, op, key))

    # 1. every condition against the state before the transaction
    errors: list[tuple[str | None, str | None, dict[str, Any] | None]] = []
    for _, op, key in operations:
        current = self.get_item(op["TableName"], key)
        expression = op.get("ConditionExpression")
        if expression is not None:
            condition = get_filter_expression(
                expression, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            )
            if not condition.expr(current):
                old = (
                    current.to_json()["Attributes"]
                    if current and op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
                    else None
                )
                errors.append(("ConditionalCheckFailed", "The conditional request failed", old))
                continue
        errors.append((None, None, None))
    if any(code is not None for code, _, _ in errors):
        raise TransactionCanceledException(errors)

    # 2. apply, restoring the touched items if anything fails half-way
    snapshots = [
        (op["TableName"], key, copy.deepcopy(self.get_item(op["TableName"], key)))
        for op_type, op, key in operations
        if op_type != "ConditionCheck"
    ]
    try:
        for op_type, op, key in operations:
            names, values = op.get("ExpressionAttributeNames") or {}, op.get("ExpressionAttributeValues") or {}
            if op_type == "Put":
                self.put_item(
                    op["TableName"], op["Item"], expression_attribute_names=names, expression_attribute_values=values
                )
            elif op_type == "Delete":
                self.delete_item(
                    op["TableName"], key, expression_attribute_names=names, expression_attribute_values=values
                )
            elif op_type == "Update":
                self.update_item(
                    op["TableName"],
                    key,
                    update_expression=op["UpdateExpression"],
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
    except Exception:
        for table_name, key, before in snapshots:
            if before is None:
                self.delete_item(table_name, key)
            else:
                self.put_item(table_name, before.to_json()["Attributes"])
        raise


def install() -> None:
    global _installed
    if not _installed:
        DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
        DynamoHandler.transact_write_items = transact_write_items_request  # type: ignore[method-assign]
        _installed = True
