"""Loyalty expiry, run by the daily job on the clock: what is due today leaves each account (`PointsExpired`),
and what is due within the warning window is announced once per account and expiry day (`PointsExpiring`), so a
reminder can go out ahead."""

from __future__ import annotations

from datetime import date, datetime

from ecrm.transactions import ledger
from ecrm.transactions.ledger import Account
from ecrm.transactions.loyalty_store import LedgerWrite
from ecrm.transactions.loyalty_writes import EXPIRING_WINDOW, AccountWrites
from ecrm.transactions.models import PointsExpired, PointsExpiring


class PointsExpiry(AccountWrites):
    def expire_due(self) -> int:
        """Expire what is due today on every account with a lot due; returns the points expired."""
        today = self.clock.now().date()
        expired = 0
        for customer_id in self.store.accounts_due(today):
            expired += self.expire_account(customer_id, today)
        for customer_id in self.store.accounts_due(today + EXPIRING_WINDOW):
            self.warn_expiring(customer_id, today)
        return expired

    def warn_expiring(self, customer_id: str, today: date) -> int:
        """`PointsExpiring` for each lot due within the window that still holds unspent points, once per account
        and expiry day (cause `expiring:<day>`), so a reminder can go out ahead; returns the warnings written."""
        account = self.store.account(customer_id)
        if account is None or account.erased:
            return 0
        by = (today + EXPIRING_WINDOW).isoformat()
        ahead: dict[str, int] = {}
        before = 0
        for day in sorted(account.lots):
            due = account.due_by(date.fromisoformat(day))
            if today.isoformat() < day <= by and due > before:
                ahead[day] = due - before
            before = due
        ahead = {
            day: points for day, points in ahead.items() if self.store.cause(customer_id, f"expiring:{day}") is None
        }
        if not ahead:
            return 0

        def change(read: Account, now: datetime) -> LedgerWrite:
            write = LedgerWrite(
                read, read.version, new_causes={f"expiring:{d}": {"points": p} for d, p in ahead.items()}
            )
            write.events += [
                PointsExpiring(customer_id=customer_id, points=p, expires_on=date.fromisoformat(d), warned_at=now)
                for d, p in ahead.items()
            ]
            return write

        return len(ahead) if self._apply(customer_id, change, None, create=False) else 0

    def expire_account(self, customer_id: str, today: date) -> int:
        gone = 0

        def change(account: Account, now: datetime) -> LedgerWrite:
            nonlocal gone
            changed, gone = ledger.expire(account, today)
            write = LedgerWrite(changed, account.version)
            if gone:
                self._line(write, "expired", -gone, f"expiry:{today.isoformat()}", now)
                write.events.append(
                    PointsExpired(
                        customer_id=customer_id, entry_id=write.entries[-1].entry_id, points=gone, expired_at=now
                    )
                )
            return write

        return gone if self._apply(customer_id, change, None, create=False) else 0
