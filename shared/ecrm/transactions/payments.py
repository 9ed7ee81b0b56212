"""Taking payment for a brokered purchase: the provider interface the saga calls, and its test double.

Both calls are keyed by the purchase id, as payment providers key their idempotent requests: a retried
charge is the same charge, and a refund needs no payment reference, so a charge whose answer was lost (a
timeout after the provider took the money) is still refunded by the compensation.

The double (`PaymentDouble`, configuration `PAYMENT_PROVIDER=double`) stands where a real provider would:
it keeps its charges in a `ChargeBook` (the engine's table in a deployment, so a refund in one Lambda
invocation finds the charge of another), and can be told to fail: charges from an amount on are declined,
or every call is unavailable.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol


class PaymentDeclined(Exception):
    """The provider refused the charge: compensate, do not retry."""


class PaymentUnavailable(Exception):
    """The provider did not answer usefully this time: the saga retries."""


class PaymentProvider(Protocol):
    def charge(self, *, key: str, customer_id: str, amount_minor: int, currency: str) -> str:
        """Takes the amount once per key; answers the payment's reference."""
        ...

    def refund(self, *, key: str) -> bool:
        """Gives back what the key's charge took; False when there was no charge (nothing to refund)."""
        ...


@dataclass(frozen=True)
class RecordedCharge:
    key: str
    payment_ref: str
    customer_id: str
    amount_minor: int
    currency: str
    refunded: bool = False


class ChargeBook(Protocol):
    def find(self, key: str) -> RecordedCharge | None: ...

    def record(self, charge: RecordedCharge) -> RecordedCharge:
        """Saves a new charge, or answers the one already saved under its key."""
        ...

    def mark_refunded(self, key: str) -> None: ...


class InMemoryChargeBook:
    def __init__(self) -> None:
        self.charges: dict[str, RecordedCharge] = {}

    def find(self, key: str) -> RecordedCharge | None:
        return self.charges.get(key)

    def record(self, charge: RecordedCharge) -> RecordedCharge:
        return self.charges.setdefault(charge.key, charge)

    def mark_refunded(self, key: str) -> None:
        self.charges[key] = replace(self.charges[key], refunded=True)


class PaymentDouble:
    """A payment provider for tests and demos, behind the same interface as a real one."""

    def __init__(self, book: ChargeBook, *, decline_from_minor: int | None = None, unavailable: bool = False) -> None:
        self.book = book
        self.decline_from_minor = decline_from_minor
        self.unavailable = unavailable

    def charge(self, *, key: str, customer_id: str, amount_minor: int, currency: str) -> str:
        self._answering()
        known = self.book.find(key)
        if known is not None:
            return known.payment_ref
        if self.decline_from_minor is not None and amount_minor >= self.decline_from_minor:
            raise PaymentDeclined(f"the card was declined for {amount_minor} {currency} (test double)")
        recorded = self.book.record(
            RecordedCharge(key, f"pay_{key}", customer_id=customer_id, amount_minor=amount_minor, currency=currency)
        )
        return recorded.payment_ref

    def refund(self, *, key: str) -> bool:
        self._answering()
        known = self.book.find(key)
        if known is None:
            return False
        if not known.refunded:
            self.book.mark_refunded(key)
        return True

    def _answering(self) -> None:
        if self.unavailable:
            raise PaymentUnavailable("the payment provider is unavailable (test double)")
