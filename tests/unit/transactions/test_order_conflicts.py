"""A transaction DynamoDB cancels for a concurrent one (TransactionConflict) is read again, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from ecrm.core.clock import FixedClock
from ecrm.core.errors import ServiceUnavailable
from ecrm.transactions.order_service import OrderService
from ecrm.transactions.order_store import OrderStore, lost_to_another_write

from tests.unit.transactions.test_orders import NOW, order_in


def cancelled(*codes: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": [{"Code": code} for code in codes],
        },
        "TransactWriteItems",
    )


class ConflictingClient:
    """Finds nothing, and cancels every transaction for a concurrent one."""

    def __init__(self) -> None:
        self.transactions = 0

    def get_item(self, **_: Any) -> dict[str, Any]:
        return {}

    def transact_write_items(self, **_: Any) -> None:
        self.transactions += 1
        raise cancelled("None", "TransactionConflict", "None")


@pytest.mark.parametrize(
    ("codes", "lost"),
    [
        (("ConditionalCheckFailed", "None"), True),
        (("None", "TransactionConflict"), True),
        (("ThrottlingError", "None"), False),
        (("ValidationError",), False),
    ],
)
def test_which_cancellations_mean_another_write_won(codes: tuple[str, ...], lost: bool) -> None:
    assert lost_to_another_write(cancelled(*codes)) is lost


def test_a_placement_that_keeps_conflicting_is_a_503_to_retry() -> None:
    client = ConflictingClient()
    service = OrderService(OrderStore(client, "t"), FixedClock(NOW))
    with pytest.raises(ServiceUnavailable):
        service.place(order_in(), idempotency_key="k", caller="agent", correlation_id="c")
    assert client.transactions == 1
