"""Merged customers' loyalty accounts: when the customer store merges customers (`CustomersMerged`), each merged
customer's points, with the days they expire, and qualifying points move to the survivor's account.

One transaction per merged customer writes both accounts, each conditional on the version it was read at: the
merged account is left empty with `merged_into` naming the survivor, the survivor's holds the sum, each gets its
statement line (cause `merge:<merged id>`), and the survivor's outbox `PointsMerged` with its new standing. So a
crash before the commit moved nothing, after it moved everything, and a redelivered merge finds the account
pointing on and moves nothing again. The pointer is what every later change reads (`AccountWrites.owner_account`):
an order the merged customer earned on and returns later takes its points back from the survivor's account, where
its lot now is. The causes stay where they were written (see `loyalty_store`); a merge is a handful of items
whatever the history.

The pointer is the account's own rather than the engine's `MergeMap` (which the lake writer keeps, on its own
queue): only a pointer written in the transaction that moves the points says, at every instant, where they are.
The survivor is still looked up through it (a survivor merged on before this merge arrived, events being
unordered, passes the points on to the end of the chain).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ecrm.core.errors import ServiceUnavailable
from ecrm.transactions import ledger
from ecrm.transactions.ledger import Account
from ecrm.transactions.loyalty_store import LedgerWrite, StaleAccount
from ecrm.transactions.loyalty_writes import ATTEMPTS, AccountWrites, standing_of
from ecrm.transactions.models import PointsMerged, TierChanged


class AccountMerges(AccountWrites):
    def merge_accounts(
        self,
        survivor_id: str,
        merged_ids: Sequence[str],
        merged_at: datetime,
        *,
        correlation_id: str | None = None,
    ) -> int:
        """Move each merged customer's account to the survivor's, once; returns the points moved now."""
        return sum(
            self._merge_one(survivor_id, merged_id, merged_at, correlation_id)
            for merged_id in merged_ids
            if merged_id != survivor_id
        )

    def _merge_one(self, survivor_id: str, merged_id: str, merged_at: datetime, correlation_id: str | None) -> int:
        for _ in range(ATTEMPTS):
            now = self.clock.now()
            rules = self.rules()
            merged = self.store.account(merged_id) or Account(merged_id, tier=ledger.tier_for(rules, 0))
            if merged.erased or merged.merged_into:
                return 0  # merged before (a redelivery), or erased: nothing left to move
            survivor = self.owner_account(survivor_id) or Account(survivor_id, tier=ledger.tier_for(rules, 0))
            if survivor.erased or survivor.merged_into or survivor.customer_id == merged_id:
                return 0  # the survivor is gone, or the chain leads back here: the points stay
            absorbed, emptied = ledger.absorb(survivor, merged, rules)
            out = LedgerWrite(emptied, merged.version)
            try:
                if not merged.version:  # no account: only the pointer, so later changes land on the survivor
                    self.store.merge(None, out, correlation_id=correlation_id, now=now)
                else:
                    into = self._absorbing(survivor, absorbed, merged, merged_at, now)
                    self._line(
                        out, "merged", -merged.balance, f"merge:{merged_id}", now, note=f"into {absorbed.customer_id}"
                    )
                    self.store.merge(into, out, correlation_id=correlation_id, now=now)
                return merged.balance
            except StaleAccount:
                continue
        raise ServiceUnavailable(f"the loyalty accounts of {survivor_id} and {merged_id} are changing concurrently")

    def _absorbing(
        self, survivor: Account, absorbed: Account, merged: Account, merged_at: datetime, now: datetime
    ) -> LedgerWrite:
        """The survivor's side of a merge: its new state, its statement line and its events."""
        into = LedgerWrite(absorbed, survivor.version)
        self._line(
            into, "merged", merged.balance, f"merge:{merged.customer_id}", now, note=f"from {merged.customer_id}"
        )
        standing = standing_of(absorbed, now)
        into.events.append(
            PointsMerged(
                customer_id=absorbed.customer_id,
                merged_id=merged.customer_id,
                entry_id=into.entries[-1].entry_id,
                points=merged.balance,
                qualifying_points=merged.qualifying,
                merged_at=merged_at,
                standing=standing,
            )
        )
        if absorbed.tier != survivor.tier:
            into.events.append(
                TierChanged(
                    customer_id=absorbed.customer_id,
                    previous_tier=survivor.tier,
                    tier=absorbed.tier,
                    qualifying_points=absorbed.qualifying,
                    changed_at=now,
                    standing=standing,
                )
            )
        return into
