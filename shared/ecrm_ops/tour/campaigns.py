"""The tour's campaigns and journeys steps: an A/B/holdout campaign to the imported customers, run as one Step
Functions execution and handed to broadcast, with a conversion effect planted in its arms; a welcome journey a
new customer enters.

They run after the transactions steps (`ecrm_ops.tour.run`): the customers exist with their consents in the lake,
and broadcast sends through the local SES. After the run, some of each arm's recipients place an order through
`POST /orders` (on the local clock, inside the attribution window): variant a's at a planted rate well above the
holdout's, b's at the holdout's own rate. The campaign's report must show a's lift as significant and b's as not.
Each step prints the engine's own report.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ecrm.campaigns.assignment import arms_of, assign, unit_point
from ecrm.campaigns.models import CampaignIn
from ecrm.core.ids import new_id

from ecrm_ops.tour.context import Step, TourContext, expect, wait_for
from ecrm_ops.tour.order_history import HISTORY_PRODUCT_NAMES, history_product_id, history_product_price

AUDIENCE = 150
ARMS = {"a": 25.0, "b": 25.0}
HOLDOUT_SHARE = 50.0  # half held out: on a demo-sized audience the control needs the numbers as much as the arms
# The planted effect: the share of each arm that orders after the launch. Variant a lifts conversion well
# above the holdout's; b converts at the holdout's own rate, so its lift must show as not significant.
PLANTED = {"a": 0.40, "b": 0.05, "holdout": 0.05}
EMAIL_A = {"email": {"subject": "Winter sale, {{ profile.first_name | default('friend') }}", "text": "Up to 30% off."}}
EMAIL_B = {"email": {"subject": "Your winter picks are here", "text": "Chosen for you, up to 30% off."}}
WELCOME = {"email": {"subject": "Welcome to the shop", "text": "Thanks for joining us."}}
BASKET = {"sku": history_product_id("home", 1), "name": HISTORY_PRODUCT_NAMES["home"][0], "category": "home"}


def _imported_customers(ctx: TourContext, count: int) -> list[str]:
    """Imported customers, by id, as the lake's latest profiles list them (erased ones left out): those who
    granted email marketing are sent the campaign, the others are suppressed by broadcast's policy, and all
    of them are targeted, which is what lift counts."""
    from infra.local.lake import LocalLake

    cloud = ctx.cloud
    lake = LocalLake(cloud.client("s3"), cloud.physical_id("AWS::S3::Bucket", "LakeBucket"))
    rows = lake.query(
        "select customer_id from (select customer_id, deleted, row_number() over "
        "(partition by customer_id order by version desc) rn from {segment_profiles}) where rn = 1 and not deleted "
        "order by customer_id"
    )
    return [str(r["customer_id"]) for r in rows][:count]


def planted_converters(members: list[str], share: float) -> list[str]:
    """Exactly `share` of an arm's `members` (rounded), chosen by a hash: each arm converts its planted rate
    whichever customers the campaign's random id puts in it, so the lift's significance is the same on every
    tour (drawn by chance, a demo-sized effect would miss significance now and then, and no effect would show
    as significant one tour in twenty)."""
    ranked = sorted(members, key=lambda c: unit_point("tour-conversion", c))
    return ranked[: round(share * len(members))]


def p_text(p_value: float) -> str:
    return "p<0.0001" if p_value < 0.0001 else f"p={p_value:.4f}"


def lift_line(lift: dict[str, Any]) -> str:
    verdict = "significant" if lift["significant"] else "not significant"
    return (
        f"{lift['arm']} converts {lift['treated_rate']:.1%} against the holdout's {lift['control_rate']:.1%}: "
        f"lift {lift['difference'] * 100:+.1f} points ({lift['confidence']:.0%} CI {lift['low'] * 100:+.1f} to "
        f"{lift['high'] * 100:+.1f}), {p_text(lift['p_value'])}, {verdict}"
    )


def _arm_line(arm: dict[str, Any]) -> str:
    return (
        f"{arm['arm']} {arm['targeted']} targeted/{arm['sent']} sent/{arm['delivered']} delivered/"
        f"{arm['suppressed']} suppressed/{arm['converted']} converted"
    )


def _place_orders(ctx: TourContext, campaign_id: str, customers: list[str]) -> None:
    """Each converter orders once through the API, now on the local clock: inside the attribution window."""
    agent = ctx.token(group="agent")

    def place(customer: str) -> None:
        body = {
            "customer_id": customer,
            "currency": "EUR",
            "channel": "web",
            "store": "shopweb",
            "lines": [{**BASKET, "quantity": 1, "unit_price_minor": round(history_product_price("home", 1) * 100)}],
        }
        key = {"Idempotency-Key": f"tour-{campaign_id}-{customer}"}
        expect(ctx.call("POST", "/orders", token=agent, body=body, headers=key), 201, f"{customer}'s order")

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(place, customers))


def _campaign(ctx: TourContext) -> str:
    marketer = ctx.token(group="marketer")
    audience = _imported_customers(ctx, AUDIENCE)
    if len(audience) < 100:
        raise AssertionError(f"the tour's campaign needs 100 imported customers to measure lift, found {len(audience)}")
    body = {
        "name": "Winter sale A/B",
        "audience": {"customer_ids": audience},
        "variants": [
            {"key": "a", "share": ARMS["a"], "content": EMAIL_A},
            {"key": "b", "share": ARMS["b"], "content": EMAIL_B},
        ],
        "holdout_share": HOLDOUT_SHARE,
    }
    campaign_id = expect(ctx.call("POST", "/campaigns", token=marketer, body=body), 201, "campaign").body["campaign_id"]
    dry = expect(ctx.call("POST", f"/campaigns/{campaign_id}/dry-run", token=marketer), 200, "dry run").body
    expect(ctx.call("POST", f"/campaigns/{campaign_id}/launch", token=marketer), 200, "launch")

    def status() -> str:
        return str(expect(ctx.call("GET", f"/campaigns/{campaign_id}", token=marketer), 200, "campaign").body["status"])

    wait_for(lambda: status() == "completed", timeout=120, interval=1, what="the campaign's run")
    treated = sum(a["recipients"] for a in dry["arms"] if a["arm"] != "holdout")

    # The planted effect: each arm's converters, by the arm the campaign's hash put them in, order now.
    arms = arms_of(CampaignIn.model_validate(body))
    members: dict[str, list[str]] = {arm: [] for arm in PLANTED}
    for customer in audience:
        members[assign(campaign_id, customer, arms)].append(customer)
    planted = {arm: planted_converters(members[arm], PLANTED[arm]) for arm in PLANTED}
    _place_orders(ctx, campaign_id, [c for converters in planted.values() for c in converters])

    def report() -> dict[str, Any] | None:
        found = expect(ctx.call("GET", f"/campaigns/{campaign_id}/report", token=marketer), 200, "report").body
        by_arm = {a["arm"]: a for a in found["arms"]}
        # `sent` counts a message once when it goes out (`delivered` later counts it again)
        outcomes = sum(a["sent"] + a["suppressed"] + a["deferred"] + a["failed"] for a in by_arm.values())
        converted = all(by_arm.get(arm, {}).get("converted") == len(planted[arm]) for arm in planted)
        return dict(found) if outcomes >= treated and converted else None

    done = wait_for(report, timeout=120, interval=1, what="every treated recipient's outcome and every conversion")
    lifts = {lift["arm"]: lift for lift in done["lift"]}
    if not lifts["a"]["significant"] or lifts["b"]["significant"]:
        raise AssertionError(f"the planted effect should lift a significantly and b not: {lifts}")
    arms_text = ", ".join(_arm_line(a) for a in done["arms"])
    return (
        f"{len(audience)} recipients, one Step Functions run: {arms_text}; orders planted at "
        + ", ".join(f"{arm} {share:.0%}" for arm, share in PLANTED.items())
        + f"; {lift_line(lifts['a'])}; {lift_line(lifts['b'])}"
    )


def _journey(ctx: TourContext) -> str:
    marketer, admin = ctx.token(group="marketer"), ctx.token(group="admin")
    body = {
        "name": "Welcome series",
        "trigger": {"event": "CustomerCreated", "source": "ecrm.customers"},
        "steps": [
            {"type": "send", "id": "welcome", "content": WELCOME, "next": "done"},
            {"type": "exit", "id": "done"},
        ],
    }
    journey_id = expect(ctx.call("POST", "/journeys", token=marketer, body=body), 201, "journey").body["journey_id"]
    expect(ctx.call("POST", f"/journeys/{journey_id}/activate", token=marketer), 200, "activate")
    try:
        address = f"{new_id('welcome').lower()}@example.org"
        customer = {
            "source": "web",
            "identities": [{"type": "email", "value": address}],
            "consents": [
                {
                    "channel": "email",
                    "purpose": "marketing",
                    "state": "granted",
                    "proof": {"source": "web", "captured_at": "2026-12-01T09:00:00+00:00"},
                }
            ],
        }
        expect(ctx.call("POST", "/customers", token=admin, body=customer), 201, "the new customer")

        def report() -> dict[str, Any] | None:
            found = expect(ctx.call("GET", f"/journeys/{journey_id}/report", token=marketer), 200, "report").body
            return dict(found) if found["entered"] >= 1 and found["active"] == 0 else None

        done = wait_for(report, timeout=90, interval=1, what="the new customer through the welcome journey")
    finally:
        expect(ctx.call("POST", f"/journeys/{journey_id}/deactivate", token=marketer), 200, "deactivate")
    steps = ", ".join(f"{step} {count}" for step, count in sorted(done["steps"].items()))
    exits = ", ".join(f"{reason} {count}" for reason, count in sorted(done["exited"].items()))
    return f"a customer created through the API entered by its CustomerCreated event: steps {steps}; exited {exits}"


STEPS: list[Step] = [
    Step("Campaigns: an A/B campaign with a holdout, run on Step Functions and sent by broadcast", _campaign),
    Step("Journeys: a welcome journey entered on CustomerCreated", _journey),
]
