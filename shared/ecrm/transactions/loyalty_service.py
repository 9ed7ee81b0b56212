"""Loyalty use cases: earn on an order, take points back on a return or a cancellation, redeem, read (expiry is
`loyalty_expiry`, the read-apply-write loop every change goes through `loyalty_writes`).

Points are earned when an order is placed (`OrderPlaced`), not when it is paid: the customer sees them at
once, and an order that is never paid is cancelled, which takes them back like a return does. Each change
names its cause; the store records the cause in the same transaction, so an event delivered twice or a
retried request changes the account once. A read-modify-write that loses a race re-reads and re-applies.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from ecrm.core.errors import Conflict, EcrmError, ServiceUnavailable
from ecrm.core.ids import new_id
from ecrm.transactions import ledger
from ecrm.transactions.ledger import Account
from ecrm.transactions.loyalty_expiry import PointsExpiry
from ecrm.transactions.loyalty_merge import AccountMerges
from ecrm.transactions.loyalty_store import CauseTaken, InsufficientBalance, LedgerWrite, StaleAccount
from ecrm.transactions.loyalty_writes import ATTEMPTS, EXPIRING_WINDOW, standing_of
from ecrm.transactions.models import (
    BirthdayReached,
    LoyaltyAccount,
    LoyaltyRules,
    LoyaltyRulesIn,
    OrderPlaced,
    OrderReturned,
    OrderStatusChanged,
    PointsEarned,
    PointsRedeemed,
    PointsReversed,
    Redemption,
    RedemptionIn,
    StatementLine,
)

STATEMENT_LINES = 50


class CauseNotYetRecorded(Exception):
    """A reversal arrived before the earning it reverses: the queue retries it later."""


class BelowMinimum(EcrmError):
    status = 422
    code = "below-minimum-redemption"
    title = "Below the minimum redemption"


class LoyaltyService(PointsExpiry, AccountMerges):
    """Every loyalty use case: the rules, earning and taking back, bonuses, redemption, expiry (`PointsExpiry`),
    merged customers' accounts (`AccountMerges`) and the account's reads."""

    # -- rules ---------------------------------------------------------------------------------------------
    def set_rules(self, body: LoyaltyRulesIn, *, actor: str) -> LoyaltyRules:
        current = self.store.rules()
        rules = LoyaltyRules(
            **body.model_dump(),
            version=(current.version if current else 0) + 1,
            updated_at=self.clock.now(),
            updated_by=actor,
        )
        try:
            self.store.save_rules(rules)
        except StaleAccount:
            raise Conflict("the rules were changed meanwhile; read them again") from None
        return rules

    # -- earning and reversals (from order events) ----------------------------------------------------------
    def earn_for_order(self, placed: OrderPlaced, *, correlation_id: str | None = None) -> int:
        """Points for the order, once; returns what it earned (0 when it was earned before).

        An order imported without points (`earns_points` false) is recorded at 0 all the same: its return or
        cancellation then finds its cause and takes back nothing, instead of waiting for an earning forever."""
        rules = self.rules()
        per_line = ledger.line_points(placed.lines, placed.currency, rules, placed.placed_at.date())
        if not placed.earns_points:
            per_line = dict.fromkeys(per_line, 0)
        points = sum(per_line.values())
        expires_on = ledger.expiry_day(placed.placed_at, rules)
        cause = f"order:{placed.order_id}"
        record = {
            "points": points,
            "expires_on": expires_on.isoformat(),
            "lines": {line.sku: [per_line[line.sku], line.quantity, 0] for line in placed.lines},
            "reversed": 0,
        }

        def change(account: Account, now: datetime) -> LedgerWrite:
            changed = ledger.earn(account, points, expires_on, rules)
            write = LedgerWrite(changed, account.version, new_causes={cause: record})
            if points:
                self._line(write, "earned", points, cause, now)
                write.events.append(
                    PointsEarned(
                        customer_id=placed.customer_id,
                        entry_id=write.entries[-1].entry_id,
                        points=points,
                        cause=cause,
                        expires_on=expires_on,
                        earned_at=now,
                    )
                )
            return write

        return points if self._apply(placed.customer_id, change, correlation_id) else 0

    def reverse_for_return(self, returned: OrderReturned, *, correlation_id: str | None = None) -> int:
        def reversal(record: dict[str, Any]) -> int:
            taken = 0
            for line in returned.lines:
                points, quantity, before = record["lines"].get(line.sku, [0, 1, 0])
                taken += ledger.returned_points(points, quantity, before, line.quantity)
                record["lines"][line.sku] = [points, quantity, before + line.quantity]
            return taken

        return self._reverse(
            returned.customer_id, returned.order_id, f"return:{returned.return_id}", reversal, correlation_id
        )

    def reverse_for_cancellation(self, changed: OrderStatusChanged, *, correlation_id: str | None = None) -> int:
        if changed.status != "cancelled":
            return 0

        def reversal(record: dict[str, Any]) -> int:
            return int(record["points"]) - int(record["reversed"])

        return self._reverse(
            changed.customer_id, changed.order_id, f"cancel:{changed.order_id}", reversal, correlation_id
        )

    def _reverse(self, customer_id: str, order_id: str, cause: str, reversal: Any, correlation_id: str | None) -> int:
        order_cause = f"order:{order_id}"
        taken_total = 0

        def change(account: Account, now: datetime) -> LedgerWrite:
            nonlocal taken_total
            found = self.store.cause(customer_id, order_cause)
            if found is None:
                raise CauseNotYetRecorded(order_cause)
            record, version = found
            wanted = reversal(record)
            rules = self.rules()
            changed, taken = ledger.reverse(account, wanted, date.fromisoformat(record["expires_on"]), rules)
            record["reversed"] = int(record["reversed"]) + wanted
            write = LedgerWrite(
                changed,
                account.version,
                new_causes={cause: {"points": taken}},
                updated_causes={order_cause: (record, version)},
            )
            if taken:
                self._line(write, "reversed", -taken, cause, now, note=f"order {order_id}")
                write.events.append(
                    PointsReversed(
                        customer_id=customer_id,
                        entry_id=write.entries[-1].entry_id,
                        points=taken,
                        cause=cause,
                        reversed_at=now,
                    )
                )
            taken_total = taken
            return write

        return taken_total if self._apply(customer_id, change, correlation_id) else 0

    def grant_signup_bonus(self, customer_id: str, joined_at: datetime, *, correlation_id: str | None = None) -> int:
        """The rules' sign-up bonus, once per customer (cause `signup`); 0 when there is none or it was given."""
        rules = self.rules()
        points = rules.signup_bonus
        if not points:
            return 0
        expires_on = ledger.expiry_day(joined_at, rules)

        def change(account: Account, now: datetime) -> LedgerWrite:
            write = LedgerWrite(
                ledger.earn(account, points, expires_on, rules),
                account.version,
                new_causes={"signup": {"points": points}},
            )
            self._line(write, "bonus", points, "signup", now)
            write.events.append(
                PointsEarned(
                    customer_id=customer_id,
                    entry_id=write.entries[-1].entry_id,
                    points=points,
                    cause="signup",
                    expires_on=expires_on,
                    earned_at=now,
                )
            )
            return write

        return points if self._apply(customer_id, change, correlation_id) else 0

    def grant_birthday_bonus(self, customer_id: str, year: int, local_date: date | None = None) -> int:
        """The customer's birthday, once per customer and year (cause `birthday:<year>`): `BirthdayReached`
        (journeys start on it) with the rules' birthday bonus, if any; returns the points given (0 when there
        is no bonus or the year's birthday was recorded before)."""
        rules = self.rules()
        points = rules.birthday_bonus
        cause = f"birthday:{year}"

        def change(account: Account, now: datetime) -> LedgerWrite:
            expires_on = ledger.expiry_day(now, rules)
            write = LedgerWrite(
                ledger.earn(account, points, expires_on, rules), account.version, new_causes={cause: {"points": points}}
            )
            if points:
                self._line(write, "bonus", points, cause, now)
                write.events.append(
                    PointsEarned(
                        customer_id=customer_id,
                        entry_id=write.entries[-1].entry_id,
                        points=points,
                        cause=cause,
                        expires_on=expires_on,
                        earned_at=now,
                    )
                )
            write.events.append(
                BirthdayReached(
                    customer_id=customer_id,
                    year=year,
                    local_date=local_date or now.date(),
                    points=points,
                    reached_at=now,
                )
            )
            return write

        return points if self._apply(customer_id, change, None) else 0

    def note_birth_date(self, customer_id: str, birth_date: date | None, profile_version: int) -> bool:
        """Keep the customer's birthday from their profile (the customer store's profile events)."""
        day = ledger.birthday_key(birth_date) if birth_date else None
        return self.store.note_birthday(customer_id, day, profile_version)

    # -- redemption -----------------------------------------------------------------------------------------
    def redeem(
        self, customer_id: str, body: RedemptionIn, *, idempotency_key: str | None, correlation_id: str
    ) -> tuple[Redemption, bool]:
        """Points for a discount code; (the redemption, True) or, for a replayed key, (the first one, False)."""
        rules = self.rules()
        if body.points < rules.minimum_redemption:
            raise BelowMinimum(f"redeem at least {rules.minimum_redemption} points")
        key = hashlib.sha256((idempotency_key or new_id()).encode()).hexdigest()[:32]
        cause = f"redemption:{key}"
        now = self.clock.now()
        redemption = Redemption(
            redemption_id=new_id("rdm_"),
            points=body.points,
            discount_code="LOY-" + secrets.token_hex(5).upper(),
            discount_minor=body.points * rules.minor_units_per_point,
            reward=body.reward,
            redeemed_at=now,
        )
        line = StatementLine(
            entry_id=new_id("led_"), kind="redeemed", points=-body.points, cause=cause, at=now, note=body.reward
        )
        event = PointsRedeemed(
            customer_id=customer_id,
            entry_id=line.entry_id,
            points=body.points,
            redemption_id=redemption.redemption_id,
            discount_minor=redemption.discount_minor,
            reward=body.reward,
            redeemed_at=now,
        )
        for _ in range(ATTEMPTS):
            read = self.owner_account(customer_id)  # a merged customer spends the survivor's points
            owner = read.customer_id if read is not None else customer_id
            after = (
                replace(
                    read,
                    balance=read.balance - body.points,
                    consumed=read.consumed + body.points,
                    version=read.version + 1,
                )
                if read is not None
                else None
            )
            try:
                self.store.redeem(
                    owner,
                    points=body.points,
                    line=line,
                    cause=cause,
                    record=redemption.model_dump(mode="json"),
                    event=event.model_copy(
                        update={"standing": standing_of(after, now) if after else None, "customer_id": owner}
                    ),
                    correlation_id=correlation_id,
                    now=now,
                    causes_of=customer_id,
                )
                return redemption, True
            except InsufficientBalance:
                account = self.owner_account(customer_id)
                if account is not None and account.customer_id != owner:
                    continue  # merged meanwhile: spend from the survivor's account
                raise Conflict(
                    f"the balance holds {account.balance if account else 0} points, fewer than {body.points}",
                    balance=account.balance if account else 0,
                ) from None
            except CauseTaken:
                found = self.store.cause(customer_id, cause)
                if found is None:  # pragma: no cover - a cause is never deleted but by erasure
                    raise ServiceUnavailable("the redemption is being recorded concurrently; retry") from None
                return Redemption.model_validate(found[0]), False
            except StaleAccount:
                continue
        raise ServiceUnavailable("the account is being changed concurrently; retry the request")

    # -- reads ----------------------------------------------------------------------------------------------
    def account(self, customer_id: str) -> LoyaltyAccount:
        rules = self.rules()
        account = self.owner_account(customer_id) or Account(customer_id, tier=ledger.tier_for(rules, 0))
        by = (self.clock.now() + EXPIRING_WINDOW).date()
        return LoyaltyAccount(
            customer_id=account.customer_id,  # a merged customer's account is the survivor's
            balance=account.balance,
            tier=account.tier,
            qualifying_points=account.qualifying,
            expiring_soon=account.due_by(by),
            expiring_by=by,
            statement=self.store.statement(account.customer_id, STATEMENT_LINES),
        )
