"""What every part of the transactions contract shares: the source, money in minor units, ids and texts."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints

from ecrm.core.contract import Contract

SOURCE = "ecrm.transactions"

# ISO 4217 minor-unit exponents that are not 2: part of the contract, since every reader of an amount in minor
# units (the loyalty rules earn per major unit, the lake's `order_lines.amount`) must convert it the same way.
CURRENCY_EXPONENTS: Mapping[str, int] = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND"), 0),
    **dict.fromkeys(("VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}


def major_units(minor: int, currency: str) -> Decimal:
    """Minor units as the currency's major unit (1999 EUR -> 19.99, 1999 JPY -> 1999, 1999 KWD -> 1.999)."""
    return Decimal(minor).scaleb(-CURRENCY_EXPONENTS.get(currency, 2))


def minor_units(amount: Decimal, currency: str) -> int:
    """A major-unit amount as minor units (19.99 EUR -> 1999, 1999 JPY -> 1999): what a file from another system
    writes as a decimal. `ValueError` for more decimals than the currency has (19.999 EUR), never a rounding."""
    exponent = CURRENCY_EXPONENTS.get(currency, 2)
    if not amount.is_finite():
        raise ValueError(f"{amount} is not a number")
    scaled = amount.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more than {exponent} decimals, the most {currency} has")
    return int(scaled)


CUSTOMER_ID_PATTERN = r"^cus_[0-9A-Z]{26}$"
ORDER_ID_PATTERN = r"^ord_[0-9A-Z]{26}$"
CustomerId = Annotated[str, StringConstraints(pattern=CUSTOMER_ID_PATTERN)]
OrderId = Annotated[str, StringConstraints(pattern=ORDER_ID_PATTERN)]
Sku = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$")]
Category = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
MinorUnits = Annotated[int, Field(ge=0, le=10**12)]

SalesChannel = Literal["web", "app", "store", "callcenter", "marketplace", "partner"]
OrderStatus = Literal["placed", "paid", "shipped", "delivered", "cancelled", "returned"]
# What `POST /orders/{id}/status` may ask for; `returned` is reached through returns only.
RequestedStatus = Literal["paid", "shipped", "delivered", "cancelled"]
# The status an order imported from another system's history may arrive in (`returned` is reached by returns).
ImportedStatus = Literal["placed", "paid", "shipped", "delivered", "cancelled"]


class _Strict(Contract):
    model_config = ConfigDict(extra="forbid", frozen=True)
