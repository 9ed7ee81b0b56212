"""How every loyalty use case changes an account: read it, apply the change, write it with its causes, lines and
events in one transaction; retried from a fresh read when another change won the race.

Each change names its cause; the store records the cause in the same transaction, so an event delivered twice
or a retried request changes the account once. A change for a customer the customer store merged into another
lands on the survivor's account (`Account.merged_into`), its cause staying under the customer it names. A change
that moves the tier adds `TierChanged`, and every event that carries a standing gets the account as the change
left it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from ecrm.core.clock import Clock
from ecrm.core.errors import ServiceUnavailable
from ecrm.core.ids import new_id
from ecrm.transactions import ledger
from ecrm.transactions.ledger import Account
from ecrm.transactions.loyalty_store import CauseTaken, LedgerWrite, LoyaltyStore, StaleAccount
from ecrm.transactions.models import LedgerKind, LoyaltyRules, LoyaltyStanding, StatementLine, TierChanged

ATTEMPTS = 8
EXPIRING_WINDOW = timedelta(days=30)

AccountChange = Callable[[Account, datetime], LedgerWrite]


class AccountWrites:
    def __init__(self, store: LoyaltyStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def rules(self) -> LoyaltyRules:
        return self.store.rules() or LoyaltyRules()

    def _apply(
        self, customer_id: str, change: AccountChange, correlation_id: str | None, *, create: bool = True
    ) -> bool:
        """Run `change` on the account read now, write it; True if written, False if its cause was done before."""
        for _ in range(ATTEMPTS):
            now = self.clock.now()
            account = self.owner_account(customer_id)
            if account is None:
                if not create:
                    return False
                account = Account(customer_id, tier=ledger.tier_for(self.rules(), 0))
            if account.erased or account.merged_into:
                return False  # erased: a late event brings nothing back (a pointer loop: nowhere to go)
            owner = account.customer_id
            write = change(account, now)
            write.causes_of = customer_id
            if owner != customer_id:  # the customer was merged: the survivor's account changed, say so
                write.events = [
                    e.model_copy(update={"customer_id": owner}) if "customer_id" in type(e).model_fields else e
                    for e in write.events
                ]
            if write.account.tier != account.tier:
                write.events.append(
                    TierChanged(
                        customer_id=owner,
                        previous_tier=account.tier,
                        tier=write.account.tier,
                        qualifying_points=write.account.qualifying,
                        changed_at=now,
                    )
                )
            if write.account == account and not write.new_causes and not write.updated_causes:
                return True  # nothing to change (an expiry with nothing due)
            standing = standing_of(write.account, now)
            write.events = [
                e.model_copy(update={"standing": standing}) if "standing" in type(e).model_fields else e
                for e in write.events
            ]
            try:
                self.store.write(write, correlation_id=correlation_id, now=now)
                return True
            except CauseTaken:
                return False
            except StaleAccount:
                continue
        raise ServiceUnavailable(f"the loyalty account of {customer_id} is being changed concurrently")

    def owner_account(self, customer_id: str) -> Account | None:
        """The account a change for the customer lands on: their own, or, once the customer store merged them,
        the survivor's (followed along a chain of merges); None when neither has one yet. A pointer loop (which
        no merge makes) ends on an account that still points on, which no change writes to."""
        account = self.store.account(customer_id)
        seen = {customer_id}
        while account is not None and account.merged_into and account.merged_into not in seen:
            seen.add(account.merged_into)
            survivor = self.store.account(account.merged_into)
            if survivor is None:
                return Account(account.merged_into, tier=ledger.tier_for(self.rules(), 0))
            account = survivor
        return account

    @staticmethod
    def _line(
        write: LedgerWrite, kind: LedgerKind, points: int, cause: str, now: datetime, note: str | None = None
    ) -> None:
        write.entries.append(
            StatementLine(entry_id=new_id("led_"), kind=kind, points=points, cause=cause, at=now, note=note)
        )


def standing_of(account: Account, now: datetime) -> LoyaltyStanding:
    """What a loyalty event carries of the account it leaves (the customer store's loyalty traits)."""
    by = (now + EXPIRING_WINDOW).date()
    return LoyaltyStanding(
        balance=account.balance,
        tier=account.tier,
        qualifying_points=account.qualifying,
        expiring_soon=account.due_by(by),
        expiring_by=by,
        account_version=account.version,
        as_of=now,
    )
