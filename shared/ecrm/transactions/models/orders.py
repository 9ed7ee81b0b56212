"""Orders and returns as the API takes and gives them, and the order events."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, model_validator

from ecrm.core.events import DomainEvent
from ecrm.transactions.models.common import (
    SOURCE,
    Category,
    Currency,
    CustomerId,
    MinorUnits,
    OrderStatus,
    RequestedStatus,
    SalesChannel,
    ShortText,
    Sku,
    _Strict,
)


# -- orders --------------------------------------------------------------------------------------------------
class OrderLineIn(_Strict):
    sku: Sku
    name: ShortText
    category: Category | None = None
    quantity: int = Field(ge=1, le=10_000)
    unit_price_minor: MinorUnits = Field(description="Price of one unit in minor units of the order's currency")


class OrderIn(_Strict):
    """`POST /orders`: an order placed on any channel (a staff console, a shop, an import)."""

    customer_id: CustomerId
    currency: Currency = Field(description="ISO 4217 code")
    channel: SalesChannel
    store: ShortText | None = Field(default=None, description="The store or site the order was placed in")
    external_ref: ShortText | None = Field(default=None, description="The order's number in the system it came from")
    lines: list[OrderLineIn] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _one_line_per_sku(self) -> OrderIn:
        skus = [line.sku for line in self.lines]
        if len(skus) != len(set(skus)):
            raise ValueError("each sku appears on one line only (add up the quantities)")
        return self


class OrderLine(OrderLineIn):
    returned_quantity: int = 0


class ReturnLineIn(_Strict):
    sku: Sku
    quantity: int = Field(ge=1, le=10_000)


class ReturnIn(_Strict):
    """`POST /orders/{id}/returns`: some units of some lines came back; they are refunded at their price."""

    lines: list[ReturnLineIn] = Field(min_length=1, max_length=100)
    reason: ShortText | None = None


class OrderReturn(_Strict):
    return_id: str
    lines: list[ReturnLineIn]
    refund_minor: int
    reason: str | None = None
    returned_at: datetime


class StatusChangeIn(_Strict):
    status: RequestedStatus
    reason: ShortText | None = None


class Order(_Strict):
    order_id: str
    customer_id: str
    status: OrderStatus
    currency: str
    channel: SalesChannel
    store: str | None = None
    external_ref: str | None = None
    lines: list[OrderLine]
    total_minor: int
    refunded_minor: int = 0
    returns: list[OrderReturn] = Field(default_factory=list)
    placed_at: datetime
    updated_at: datetime
    version: int = 1


class OrderList(_Strict):
    items: list[Order]


# -- order events ---------------------------------------------------------------------------------------------
class OrderPlaced(DomainEvent):
    """An order was placed; its lines carry what loyalty earns on and what the lake records as a purchase."""

    source = SOURCE
    detail_type = "OrderPlaced"

    order_id: str
    customer_id: str
    currency: str
    channel: str
    store: str | None = None
    lines: list[OrderLineIn]
    total_minor: int
    placed_at: datetime
    earns_points: bool = Field(
        default=True,
        description="False for an order imported from another system's history without loyalty points "
        "(the ledger records it at 0, so a later return or cancellation takes back nothing)",
    )


class OrderStatusChanged(DomainEvent):
    """An order moved in its status machine; `refund_minor` is what a cancellation after payment gives back."""

    source = SOURCE
    detail_type = "OrderStatusChanged"

    order_id: str
    customer_id: str
    previous_status: str
    status: str
    reason: str | None = None
    refund_minor: int = 0
    currency: str
    changed_at: datetime


class ReturnedLine(_Strict):
    sku: str
    category: str | None = None
    quantity: int
    unit_price_minor: int


class OrderReturned(DomainEvent):
    """Units of an order came back and were refunded: a refund, never a purchase, to every reader."""

    source = SOURCE
    detail_type = "OrderReturned"

    order_id: str
    customer_id: str
    return_id: str
    lines: list[ReturnedLine]
    refund_minor: int
    currency: str
    fully_returned: bool
    returned_at: datetime
