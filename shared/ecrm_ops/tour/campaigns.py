"""The tour's campaigns and journeys steps: an A/B/holdout campaign to the imported customers who granted email
marketing, run as one Step Functions execution and handed to broadcast; a welcome journey a new customer enters.

They run after the transactions steps (`ecrm_ops.tour.run`): the customers exist with their consents in the lake,
and broadcast sends through the local SES. Each step prints the engine's own report.
"""

from __future__ import annotations

from typing import Any

from ecrm.core.ids import new_id

from ecrm_ops.tour.context import Step, TourContext, expect, wait_for

AUDIENCE = 40
EMAIL_A = {"email": {"subject": "Winter sale, {{ profile.first_name | default('friend') }}", "text": "Up to 30% off."}}
EMAIL_B = {"email": {"subject": "Your winter picks are here", "text": "Chosen for you, up to 30% off."}}
WELCOME = {"email": {"subject": "Welcome to the shop", "text": "Thanks for joining us."}}


def _consenting_customers(ctx: TourContext, count: int) -> list[str]:
    """Imported customers whose latest profile in the lake granted email marketing, by id."""
    from infra.local.lake import LocalLake

    cloud = ctx.cloud
    lake = LocalLake(cloud.client("s3"), cloud.physical_id("AWS::S3::Bucket", "LakeBucket"))
    rows = lake.query(
        "select customer_id from (select *, row_number() over (partition by customer_id order by version desc) rn "
        "from {segment_profiles}) where rn = 1 and not deleted and c_email_marketing = 'granted' order by customer_id"
    )
    return [str(r["customer_id"]) for r in rows][:count]


def _arm_line(arm: dict[str, Any]) -> str:
    return (
        f"{arm['arm']} {arm['targeted']} targeted/{arm['sent'] + arm['delivered']} sent/{arm['suppressed']} suppressed"
    )


def _campaign(ctx: TourContext) -> str:
    marketer = ctx.token(group="marketer")
    audience = _consenting_customers(ctx, AUDIENCE)
    if len(audience) < 10:
        raise AssertionError(f"the tour needs customers who granted email marketing, found {len(audience)}")
    body = {
        "name": "Winter sale A/B",
        "audience": {"customer_ids": audience},
        "variants": [{"key": "a", "share": 45, "content": EMAIL_A}, {"key": "b", "share": 45, "content": EMAIL_B}],
        "holdout_share": 10,
    }
    campaign_id = expect(ctx.call("POST", "/campaigns", token=marketer, body=body), 201, "campaign").body["campaign_id"]
    dry = expect(ctx.call("POST", f"/campaigns/{campaign_id}/dry-run", token=marketer), 200, "dry run").body
    expect(ctx.call("POST", f"/campaigns/{campaign_id}/launch", token=marketer), 200, "launch")

    def status() -> str:
        return str(expect(ctx.call("GET", f"/campaigns/{campaign_id}", token=marketer), 200, "campaign").body["status"])

    wait_for(lambda: status() == "completed", timeout=120, interval=1, what="the campaign's run")
    treated = sum(a["recipients"] for a in dry["arms"] if a["arm"] != "holdout")

    def report() -> dict[str, Any] | None:
        found = expect(ctx.call("GET", f"/campaigns/{campaign_id}/report", token=marketer), 200, "report").body
        arms = [a for a in found["arms"] if a["arm"] != "holdout"]
        # `sent` counts a message once when it goes out (`delivered` later counts it again)
        outcomes = sum(a["sent"] + a["suppressed"] + a["deferred"] + a["failed"] for a in arms)
        return dict(found) if outcomes >= treated else None

    done = wait_for(report, timeout=120, interval=1, what="every treated recipient's outcome in the report")
    arms = ", ".join(_arm_line(a) for a in done["arms"])
    return f"{len(audience)} recipients, one Step Functions run: {arms}"


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
