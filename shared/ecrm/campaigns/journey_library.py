"""Ready-made journeys: definitions with their content, started from the events the engines publish today.

Each entry builds a `JourneyIn` from a few parameters (hours to wait, a segment id); staff create a draft
from it (`POST /journeys/library/{name}`), with new content for some send steps or whole fields replaced,
and activate it like any journey. The result is validated as a journey is, so the library cannot make
what `POST /journeys` would refuse.

Every trigger, goal and awaited event is an event on the bus (its schema is in `events/schemas`, and the
journey queue's rules route it: a unit test holds both). An entry whose event did not exist yet would say so
(`trigger_ready` False, `trigger_note`) and start on the nearest event that does, instead of naming one
nobody publishes; today every entry starts on the event it is about.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from ecrm.campaigns.models import JourneyIn, JourneyLibrary, LibraryDraftIn, LibraryJourney, LibraryParameter, Scalar
from ecrm.core.errors import InvalidInput, NotFound

HOUR = 3600
DAY = 24 * HOUR
# The customer store's interaction types for the tracking API's "Checkout Started" and "Cart Viewed"
# (`ecrm.customers.stitching.interaction_type`): the journey queue's rule lets only these interactions in.
CART_INTERACTIONS = ("checkout_started", "cart_viewed")
PAYMENT_FAILURES = ("payment_declined", "payment_unavailable")
GREETING = "{{ profile.first_name or 'there' }}"
# Service messages are not held back by the marketing journeys a customer is in: their own cap is high.
SERVICE_CAP = 20


@dataclass(frozen=True)
class Parameter:
    name: str
    description: str
    type: Literal["integer", "number", "string"]
    default: Scalar | None = None
    example: Scalar | None = None

    def read(self, given: Mapping[str, Scalar]) -> Scalar:
        value = given.get(self.name, self.default)
        if value is None:
            raise InvalidInput(f"the parameter {self.name} is required: {self.description}", field=self._field)
        ok = {
            "integer": isinstance(value, int) and not isinstance(value, bool) and value >= 1,
            "number": isinstance(value, int | float) and not isinstance(value, bool),
            "string": isinstance(value, str) and value != "",
        }[self.type]
        if not ok:
            what = "a positive integer" if self.type == "integer" else f"a {self.type}"
            raise InvalidInput(f"the parameter {self.name} must be {what}", field=self._field)
        return value

    @property
    def _field(self) -> str:
        return f"parameters.{self.name}"


@dataclass(frozen=True)
class Entry:
    name: str
    title: str
    description: str
    trigger_ready: bool
    trigger_note: str
    parameters: tuple[Parameter, ...]
    build: Callable[[Mapping[str, Any]], dict[str, Any]]

    def journey(self, given: Mapping[str, Scalar]) -> dict[str, Any]:
        unknown = sorted(set(given) - {p.name for p in self.parameters})
        if unknown:
            raise InvalidInput(f"{self.name} takes no parameter {', '.join(unknown)}", field="parameters")
        return self.build({p.name: p.read(given) for p in self.parameters})

    def describe(self) -> LibraryJourney:
        examples = {p.name: p.example for p in self.parameters if p.default is None and p.example is not None}
        return LibraryJourney(
            name=self.name,
            title=self.title,
            description=self.description,
            trigger_ready=self.trigger_ready,
            trigger_note=self.trigger_note,
            parameters=[
                LibraryParameter(name=p.name, description=p.description, type=p.type, default=p.default)
                for p in self.parameters
            ],
            journey=JourneyIn.model_validate(self.journey(examples)),
        )


def catalogue() -> JourneyLibrary:
    return JourneyLibrary(items=[entry.describe() for entry in ENTRIES.values()])


def draft(name: str, request: LibraryDraftIn) -> JourneyIn:
    """The entry's journey with the request's parameters, content and overrides; a 4xx when it is not one."""
    entry = ENTRIES.get(name)
    if entry is None:
        raise NotFound(f"no ready-made journey {name}; GET /journeys/library lists them")
    body = entry.journey(request.parameters)
    sends = {step["id"]: step for step in body["steps"] if step["type"] == "send"}
    for step_id, content in request.content.items():
        if step_id not in sends:
            raise InvalidInput(f"{name} has no send step {step_id}", field=f"content.{step_id}")
        sends[step_id]["content"] = content
    body.update(request.overrides.model_dump(mode="json", exclude_unset=True))
    try:
        return JourneyIn.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidInput(
            f"the journey would be invalid: {where}: {first['msg']}", field=where or "overrides"
        ) from exc


# -- content and steps ---------------------------------------------------------------------------------------
def email(subject: str, text: str, sms: str | None = None) -> dict[str, Any]:
    """Email content, and an SMS body when the message may go by SMS (the customer's preferred channel)."""
    content: dict[str, Any] = {"email": {"subject": subject, "text": text}}
    if sms:
        content["sms"] = {"body": sms}
    return content


def send(step_id: str, content: dict[str, Any], then: str | None = None, **options: Any) -> dict[str, Any]:
    return {"type": "send", "id": step_id, "content": content, "next": then, **options}


def wait(step_id: str, seconds: int, then: str | None) -> dict[str, Any]:
    return {"type": "wait", "id": step_id, "seconds": seconds, "next": then}


def unless_engaged(step_id: str, event: str, otherwise: str) -> dict[str, Any]:
    """Ends the journey for a customer who did `event` since entering; the others go on to `otherwise`."""
    condition = {"kind": "engagement", "event": event}
    return {"type": "branch", "id": step_id, "condition": condition, "then": None, "otherwise": otherwise}


def trigger(event: str, source: str, **match: Any) -> dict[str, Any]:
    return {"event": event, "source": source, "match": match}


RECOMMENDED = (
    "{% if data.recommendations %}Picked for you:\n"
    "{% for item in data.recommendations %}- {{ item.name }}{% if item.url %} {{ item.url }}{% endif %}\n"
    "{% endfor %}{% else %}Have a look at what is new in the shop.{% endif %}"
)


# -- the entries ----------------------------------------------------------------------------------------------
def _welcome(p: Mapping[str, Any]) -> dict[str, Any]:
    opened = {"kind": "engagement", "event": "MessageOpened"}
    return {
        "name": "Welcome series",
        "trigger": trigger("CustomerCreated", "ecrm.customers"),
        "goal_event": "OrderPlaced",
        "reentry": "never",
        "steps": [
            send("welcome", email(f"Welcome, {GREETING}", "Thanks for joining us. Here is what to expect."), "wait"),
            wait("wait", p["reminder_after_hours"] * HOUR, "opened"),
            {"type": "branch", "id": "opened", "condition": opened, "then": "tips", "otherwise": "reminder"},
            send("tips", email("Getting the most out of your account", "A few things members like most.")),
            send("reminder", email(f"{GREETING}, your welcome gift is waiting", "Your welcome offer is still there.")),
        ],
    }


def _birthday(p: Mapping[str, Any]) -> dict[str, Any]:
    greeting = email(f"Happy birthday, {GREETING}!", "All of us wish you a wonderful day.")
    return {
        "name": "Birthday",
        "trigger": trigger("BirthdayReached", "ecrm.transactions"),
        "reentry": "after_exit",
        "reentry_after_seconds": 300 * DAY,
        "steps": [send("greeting", greeting)],
    }


def _abandoned_cart(p: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": "Abandoned cart",
        "trigger": trigger("InteractionRecorded", "ecrm.customers", type=list(CART_INTERACTIONS)),
        "goal_event": "OrderPlaced",
        "reentry": "after_exit",
        "reentry_after_seconds": DAY,
        "steps": [
            wait("grace", p["hours"] * HOUR, "reminder"),
            send(
                "reminder",
                email("You left something in your cart", "Your cart is saved: finish your order."),
                "last_call",
            ),
            wait("last_call", DAY, "clicked"),
            unless_engaged("clicked", "MessageClicked", "nudge"),
            send("nudge", email("Still thinking it over?", "Your cart is still saved for you.")),
        ],
    }


def _cross_sell(p: Mapping[str, Any]) -> dict[str, Any]:
    suggestion = email(f"{GREETING}, goes well with your order", RECOMMENDED)
    return {
        "name": "Post-purchase cross-sell",
        "trigger": trigger("OrderPlaced", "ecrm.transactions"),
        "goal_event": "OrderPlaced",
        "reentry": "after_exit",
        "reentry_after_seconds": 30 * DAY,
        "steps": [
            wait("settle", p["days_after"] * DAY, "suggest"),
            send("suggest", suggestion, recommendations=p["items"]),
        ],
    }


def _win_back(p: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": "Win-back",
        "trigger": trigger("SegmentEntered", "ecrm.analysis", segment_id=p["segment_id"]),
        "goal_event": "OrderPlaced",
        "reentry": "after_exit",
        "reentry_after_seconds": 90 * DAY,
        "steps": [
            send(
                "miss_you", email(f"We miss you, {GREETING}", "Come back for something new: here is an offer."), "wait"
            ),
            wait("wait", p["second_offer_after_days"] * DAY, "clicked"),
            unless_engaged("clicked", "MessageClicked", "better_offer"),
            send("better_offer", email("A better offer, just for you", "Our best offer, valid this week.")),
        ],
    }


def _points_expiring(p: Mapping[str, Any]) -> dict[str, Any]:
    lead = p["remind_days_before"]
    reminder = email("Your points expire soon", f"Some of your points expire in {lead} days: use them before then.")
    until = {"type": "wait", "id": "until_reminder", "until_trigger_time": "expires_on", "before_seconds": lead * DAY}
    return {
        "name": "Points about to expire",
        "trigger": trigger("PointsExpiring", "ecrm.transactions"),
        "goal_event": "PointsRedeemed",
        "reentry": "after_exit",
        "reentry_key": "expires_on",
        "steps": [{**until, "next": "remind"}, send("remind", reminder)],
    }


def _order_delay(p: Mapping[str, Any]) -> dict[str, Any]:
    apology = email(
        "Your order is running late",
        "We are sorry: your order has not left us yet. We are on it and will tell you when it ships.",
        sms="Sorry, your order is running late. We will tell you when it ships.",
    )
    shipping = {
        "type": "wait",
        "id": "shipping",
        "until_event": "OrderStatusChanged",
        "until_match": {"status": ["shipped", "cancelled"]},
        "same_as_trigger": ["order_id"],
        "timeout_seconds": p["hours"] * HOUR,
        "next": None,
        "on_timeout": "apology",
    }
    return {
        "name": "Service recovery: order delay",
        "purpose": "transactional",
        "trigger": trigger("OrderStatusChanged", "ecrm.transactions", status="paid"),
        "reentry": "after_exit",
        "max_concurrent_journeys": SERVICE_CAP,
        "steps": [shipping, send("apology", apology)],
    }


def _failed_payment(p: Mapping[str, Any]) -> dict[str, Any]:
    help_ = email(
        "Need a hand with your payment?",
        "Your payment did not go through and nothing was charged. Try again, or reply for help.",
        sms="Your payment did not go through; nothing was charged. Try again any time.",
    )
    return {
        "name": "Service recovery: failed payment",
        "purpose": "transactional",
        "trigger": trigger("PurchaseFailed", "ecrm.transactions", reason=list(PAYMENT_FAILURES)),
        "goal_event": "PurchaseBrokered",
        "reentry": "after_exit",
        "reentry_after_seconds": DAY,
        "max_concurrent_journeys": SERVICE_CAP,
        "steps": [wait("retry_window", p["hours"] * HOUR, "help"), send("help", help_)],
    }


SEGMENT_ID = "the segment whose entering starts the journey (seg_...)"
ENTRIES: dict[str, Entry] = {
    entry.name: entry
    for entry in (
        Entry(
            "welcome_series",
            "Welcome series",
            "A welcome on sign-up; after a wait, tips to those who opened it and a reminder to those who did not.",
            True,
            "CustomerCreated (ecrm.customers): a record matched no existing customer.",
            (Parameter("reminder_after_hours", "Hours between the welcome and the follow-up", "integer", 48),),
            _welcome,
        ),
        Entry(
            "birthday",
            "Birthday",
            "A greeting on the customer's birthday, at most once a year.",
            True,
            "BirthdayReached (ecrm.transactions): loyalty's hourly birthday job publishes it once a year for each "
            "customer whose birth_date is today in their own zone, with the rules' birthday bonus or without one.",
            (),
            _birthday,
        ),
        Entry(
            "abandoned_cart",
            "Abandoned cart",
            "A reminder when a started checkout or a viewed cart is not followed by an order within the hours "
            "given, and a last nudge a day later to those who did not click; an order ends it (the goal).",
            True,
            "The tracking API's 'Checkout Started' and 'Cart Viewed' (collect's TrackEventReceived, which names "
            "no customer) reach journeys as the customer store's InteractionRecorded of type checkout_started "
            "or cart_viewed, once the visitor's ids resolve to a customer. The cart's items are not in the "
            "message: a journey keeps no data of its trigger event.",
            (Parameter("hours", "Hours without an order before the reminder", "integer", 4),),
            _abandoned_cart,
        ),
        Entry(
            "post_purchase_cross_sell",
            "Post-purchase cross-sell",
            "Days after an order, personalization's recommendations for the customer; another order is the goal.",
            True,
            "OrderPlaced (ecrm.transactions). The send step asks personalization's recommend function for the "
            "customer's items (`data.recommendations`); where it is not configured, or fails, the list is empty "
            "and the message's fallback text is sent.",
            (
                Parameter("days_after", "Days between the order and the suggestions", "integer", 3),
                Parameter("items", "How many recommended items the message shows", "integer", 4),
            ),
            _cross_sell,
        ),
        Entry(
            "win_back",
            "Win-back",
            "An offer when a customer's churn risk crosses the threshold, and a better one to those who did not "
            "click; an order is the goal.",
            True,
            "No event says churn risk crossed a threshold: the analysis model job publishes churn_risk in "
            "TraitsComputed batches, which name many customers and enter no journey. Crossing it is entering a "
            'segment ruled {"trait": "churn_risk", "op": "gte", "value": 0.7} (analysis re-evaluates '
            "segments on TraitsComputed and publishes SegmentEntered): create that segment and give its id.",
            (
                Parameter("segment_id", SEGMENT_ID, "string", example="seg_churnrisk"),
                Parameter("second_offer_after_days", "Days before the better offer", "integer", 7),
            ),
            _win_back,
        ),
        Entry(
            "points_expiring",
            "Points about to expire",
            "A reminder some days before unspent points expire; a redemption ends it (the goal).",
            True,
            "PointsExpiring (ecrm.transactions): loyalty's daily expiry job warns 30 days ahead, once per account "
            "and expiry day, of the points still unspent. The journey waits until the event's expires_on less "
            "remind_days_before (at once when that is already past). Each expiry day is its own pass "
            "(reentry_key expires_on): a warning of a later expiry while the customer waits for an earlier one "
            "gets its own reminder at its own time; the same expiry warned twice enters once.",
            (Parameter("remind_days_before", "Days before expiry to remind", "integer", 14),),
            _points_expiring,
        ),
        Entry(
            "order_delay_recovery",
            "Service recovery: order delay",
            "An apology when a paid order has not shipped (nor been cancelled) within the hours given.",
            True,
            "A delay is found on the clock: orders have no 'delayed' status, so the journey starts on "
            "OrderStatusChanged (ecrm.transactions) to paid and waits for the same order (its order_id) to go to "
            "shipped or cancelled; the wait timing out is the delay. Another order paid while the customer waits "
            "is not followed.",
            (Parameter("hours", "Hours from payment to shipping before it is late", "integer", 72),),
            _order_delay,
        ),
        Entry(
            "failed_payment_recovery",
            "Service recovery: failed payment",
            "Help to retry, hours after a purchase failed on its payment, unless the customer bought since.",
            True,
            "PurchaseFailed (ecrm.transactions) with reason payment_declined or payment_unavailable; broadcast "
            "already tells the customer why at once, this is the follow-up. PurchaseBrokered is the goal.",
            (Parameter("hours", "Hours before the follow-up", "integer", 6),),
            _failed_payment,
        ),
    )
}
