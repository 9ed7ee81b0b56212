"""Campaigns and journeys on the local cloud: a launch runs the campaign's state machine (freeze the audience
into a manifest in the lake bucket, the Distributed Map over its chunks with an S3 ItemReader, finish) and
hands the treated recipients to broadcast's bulk request function: each is emailed once through the local
SES, the holdout never, and a chunk handed over again names the same, already sent, messages. A campaign
scheduled an hour ahead fires when the local clock gets there, a recurring one fires at each hour, an
auto-winner picks after its test hour, a throttled one hands a message a minute, and a journey's customer
enters on their creation and leaves when the clock passes their wait.

The scheduled campaign puts every recipient in the holdout (99.99% of the audience, checked with the dry run
before launch) and the journey sends nothing: they prove the orchestration alone, quickly.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from ecrm.broadcast.models import MessageRequest
from ecrm.core.ids import new_id
from ecrm_ops.tour.context import TourContext, expect, wait_for

from infra.local.cloud import LocalCloud

EMAIL = {"email": {"subject": "Hello", "text": "Our news"}}


def holdout_only(tour: TourContext, token: str, **overrides: Any) -> str:
    """A campaign whose five recipients all land in the holdout (a new one until the dry run says so)."""
    audience = [new_id("cus_") for _ in range(5)]
    body = {
        "name": "Orchestration check",
        "audience": {"customer_ids": audience},
        "variants": [{"key": "a", "share": 0.01, "content": EMAIL}],
        "holdout_share": 99.99,
        **overrides,
    }
    everyone_held = {"holdout": 5, **{v["key"]: 0 for v in body["variants"]}}
    for _ in range(5):
        campaign_id = str(
            expect(tour.call("POST", "/campaigns", token=token, body=body), 201, "campaign").body["campaign_id"]
        )
        dry = expect(tour.call("POST", f"/campaigns/{campaign_id}/dry-run", token=token), 200, "dry run").body
        if {a["arm"]: a["recipients"] for a in dry["arms"]} == everyone_held:
            return campaign_id
    raise AssertionError("no campaign put all five in the holdout")


def status(tour: TourContext, token: str, campaign_id: str) -> dict[str, Any]:
    return dict(expect(tour.call("GET", f"/campaigns/{campaign_id}", token=token), 200, "campaign").body)


def test_a_campaign_scheduled_an_hour_ahead_fires_on_the_local_clock(
    cloud: LocalCloud, tour: TourContext, staff_token: str
) -> None:
    at = (cloud.clock.now() + timedelta(hours=1)).isoformat()
    campaign_id = holdout_only(tour, staff_token, schedule={"kind": "at", "at": at})
    scheduled = expect(tour.call("POST", f"/campaigns/{campaign_id}/launch", token=staff_token), 200, "launch").body
    assert scheduled["status"] == "scheduled"

    cloud.clock.advance(timedelta(hours=1, minutes=1))

    done = wait_for(
        lambda: (c := status(tour, staff_token, campaign_id))["status"] == "completed" and c, timeout=60, what="fire"
    )
    assert done["run"] == 1


def test_a_recurring_campaign_fires_twice_on_the_local_clock(
    cloud: LocalCloud, tour: TourContext, staff_token: str
) -> None:
    # Given a campaign recurring every hour on the hour, launched
    campaign_id = holdout_only(tour, staff_token, schedule={"kind": "cron", "cron": "cron(0 * * * ? *)"})
    launched = expect(tour.call("POST", f"/campaigns/{campaign_id}/launch", token=staff_token), 200, "launch").body
    assert launched["status"] == "scheduled"
    try:
        # When the local clock passes two hours, one at a time
        for run in (1, 2):
            cloud.clock.advance(timedelta(hours=1))
            wait_for(
                lambda run=run: (
                    (c := status(tour, staff_token, campaign_id))["run"] == run and c["status"] == "scheduled"
                ),
                timeout=60,
                what=f"run {run}",
            )
        # Then each hour ran once, and the campaign waits for the next
        report = expect(tour.call("GET", f"/campaigns/{campaign_id}/report", token=staff_token), 200, "r").body
        assert {a["arm"]: a["targeted"] for a in report["arms"]} == {"holdout": 10, "a": 0}
    finally:
        # a recurring schedule left behind would fire at every later move of the suite's clock
        expect(tour.call("POST", f"/campaigns/{campaign_id}/cancel", token=staff_token), 200, "cancel")


def test_an_auto_winner_waits_its_test_hours_on_the_local_clock_then_picks(
    cloud: LocalCloud, tour: TourContext, staff_token: str
) -> None:
    # Given an A/B campaign with an auto-winner after an hour (its recipients all held out: nothing is sent)
    variants = [{"key": "a", "share": 0.01, "content": EMAIL}, {"key": "b", "share": 0.01, "content": EMAIL}]
    campaign_id = holdout_only(
        tour,
        staff_token,
        variants=variants,
        holdout_share=99.98,
        auto_winner={"metric": "opens", "test_share": 50, "test_hours": 1},
    )
    expect(tour.call("POST", f"/campaigns/{campaign_id}/launch", token=staff_token), 200, "launch")

    # When the test phase was handed over, and then the clock passes the test hour
    wait_for(
        lambda: sum(a["targeted"] for a in report(tour, staff_token, campaign_id)["arms"]) == 5,
        timeout=60,
        what="the test phase",
    )
    assert status(tour, staff_token, campaign_id)["winner"] is None
    cloud.clock.advance(timedelta(hours=1, minutes=1))

    # Then the run picks a winner (the first variant: nothing was measured) and completes
    done = wait_for(
        lambda: (c := status(tour, staff_token, campaign_id))["status"] == "completed" and c, timeout=60, what="pick"
    )
    assert done["winner"] == "a"


def test_a_throttled_campaign_hands_over_a_message_a_minute_on_the_local_clock(
    cloud: LocalCloud, tour: TourContext, staff_token: str
) -> None:
    # Given three recipients and a throttle of one message a minute
    body = {
        "name": "Throttled",
        "audience": {"customer_ids": [new_id("cus_") for _ in range(3)]},
        "variants": [{"key": "a", "share": 100, "content": EMAIL}],
        "throttle_per_minute": 1,
    }
    campaign_id = expect(tour.call("POST", "/campaigns", token=staff_token, body=body), 201, "campaign").body[
        "campaign_id"
    ]
    launched = expect(tour.call("POST", f"/campaigns/{campaign_id}/launch", token=staff_token), 200, "launch").body

    # When the first chunk went at once, and then the clock passes three minutes
    wait_for(lambda: report(tour, staff_token, campaign_id)["arms"][0]["targeted"] >= 1, timeout=60, what="chunk 0")
    cloud.clock.advance(timedelta(minutes=3))
    wait_for(lambda: status(tour, staff_token, campaign_id)["status"] == "completed", timeout=60, what="the run")

    # Then the n-th chunk was handed over no earlier than n minutes after the launch (to the second: a Wait
    # state's timestamp has whole seconds, and Step Functions ends a Wait within its second)
    table = cloud.physical_id("AWS::DynamoDB::Table", "CampaignsTable")
    items = cloud.client("dynamodb").query(
        TableName=table,
        KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
        ExpressionAttributeValues={":p": {"S": f"CAMPAIGN#{campaign_id}"}, ":s": {"S": "RUN#000001#CHUNK#"}},
        ConsistentRead=True,
    )["Items"]
    started = datetime.fromisoformat(launched["launched_at"])
    handed = sorted(datetime.fromisoformat(item["at"]["S"]) for item in items)
    assert len(handed) == 3
    for n, at in enumerate(handed):
        assert at >= started + timedelta(minutes=n) - timedelta(seconds=1), (n, at, started)


def report(tour: TourContext, token: str, campaign_id: str) -> dict[str, Any]:
    return dict(expect(tour.call("GET", f"/campaigns/{campaign_id}/report", token=token), 200, "report").body)


def test_a_journey_enters_on_customer_created_and_its_wait_ends_on_the_local_clock(
    cloud: LocalCloud, tour: TourContext, staff_token: str
) -> None:
    # Given an active journey that waits an hour after a customer is created (no send: see the module's note)
    body: dict[str, Any] = {
        "name": "Wait an hour",
        "trigger": {"event": "CustomerCreated", "source": "ecrm.customers"},
        "steps": [{"type": "wait", "id": "pause", "seconds": 3600, "next": "done"}, {"type": "exit", "id": "done"}],
    }
    journey_id = expect(tour.call("POST", "/journeys", token=staff_token, body=body), 201, "journey").body["journey_id"]
    expect(tour.call("POST", f"/journeys/{journey_id}/activate", token=staff_token), 200, "activate")
    try:
        # When a customer is created
        customer = {
            "source": "web",
            "identities": [{"type": "email", "value": f"{new_id('jny').lower()}@example.org"}],
        }
        expect(tour.call("POST", "/customers", token=tour.token(group="admin"), body=customer), 201, "customer")

        def report() -> dict[str, Any]:
            return dict(expect(tour.call("GET", f"/journeys/{journey_id}/report", token=staff_token), 200, "r").body)

        # Then they enter through the outbox, the bus and the journeys' queue, and wait
        wait_for(lambda: report()["active"] == 1, timeout=60, what="the customer entering the journey")
        assert report()["steps"] == {"pause": 1}

        # And when the local clock passes the hour, the wake job moves them on to the exit
        cloud.clock.advance(timedelta(hours=1, minutes=6))
        done = wait_for(lambda: (r := report())["active"] == 0 and r, timeout=60, what="the wait ending")
        assert done["exited"] == {"completed": 1}
        assert done["entered"] == 1
    finally:
        expect(tour.call("POST", f"/journeys/{journey_id}/deactivate", token=staff_token), 200, "deactivate")


def test_an_ab_holdout_campaign_emails_each_treated_recipient_once_and_the_holdout_nobody(
    cloud: LocalCloud, tour: TourContext, staff_token: str
) -> None:
    from ecrm.campaigns.assignment import arms_of, assign
    from ecrm.campaigns.models import Campaign

    from tests.e2e.test_broadcast import mailbox, new_customer

    # Given ten customers who granted email marketing, in an A/B/holdout campaign
    run = new_id("c").lower()
    addresses = {new_customer(tour, staff_token, f"{run}-{n}@example.org"): f"{run}-{n}@example.org" for n in range(10)}
    contents = {
        "a": {"email": {"subject": "Offer A", "text": "Variant A"}},
        "b": {"email": {"subject": "Offer B", "text": "Variant B"}},
    }
    body = {
        "name": "A/B with holdout",
        "audience": {"customer_ids": list(addresses)},
        "variants": [
            {"key": "a", "share": 45, "content": contents["a"]},
            {"key": "b", "share": 45, "content": contents["b"]},
        ],
        "holdout_share": 10,
    }
    created = expect(tour.call("POST", "/campaigns", token=staff_token, body=body), 201, "campaign").body
    campaign = Campaign.model_validate(created)
    arm = {c: assign(campaign.campaign_id, c, arms_of(campaign)) for c in addresses}
    treated = [c for c in addresses if arm[c] != "holdout"]

    # When it is launched and its run completes
    expect(tour.call("POST", f"/campaigns/{campaign.campaign_id}/launch", token=staff_token), 200, "launch")
    wait_for(lambda: status(tour, staff_token, campaign.campaign_id)["status"] == "completed", timeout=90, what="run")

    # Then every treated recipient gets one email of their variant, and the holdout nobody
    wait_for(lambda: all(mailbox(cloud, addresses[c]) for c in treated), timeout=90, what="the campaign's emails")
    for customer, address in addresses.items():
        mails = mailbox(cloud, address)
        assert len(mails) == (0 if arm[customer] == "holdout" else 1), (customer, arm[customer])
    report = expect(tour.call("GET", f"/campaigns/{campaign.campaign_id}/report", token=staff_token), 200, "r").body
    assert sum(a["requested"] for a in report["arms"]) == len(treated)
    assert {a["arm"]: a["targeted"] for a in report["arms"] if a["targeted"]} == {
        a: sum(1 for c in addresses if arm[c] == a) for a in set(arm.values())
    }
    # the run completes and, over, deletes the manifest it froze its audience into (an erasure need not search
    # past runs); a relaunch is refused
    wait_for(
        lambda: tour.call("GET", f"/campaigns/{campaign.campaign_id}", token=staff_token).body["status"] == "completed",
        timeout=60,
        what="the run completed",
    )
    s3 = cloud.client("s3")
    keys = [
        o["Key"]
        for bucket in s3.list_buckets()["Buckets"]
        for o in s3.list_objects_v2(Bucket=bucket["Name"], Prefix=f"campaign-runs/{campaign.campaign_id}/").get(
            "Contents", []
        )
    ]
    assert keys == []
    expect(tour.call("POST", f"/campaigns/{campaign.campaign_id}/launch", token=staff_token), 409, "relaunch")

    # And a chunk handed over again (a worker's retry) names the same messages, already sent: nobody twice
    requests = [
        MessageRequest.model_validate(
            {
                "customer_id": c,
                "purpose": "marketing",
                "content": contents[arm[c]],
                "source": f"campaign:{campaign.campaign_id}",
                "step": f"r1.{arm[c]}",
                "tracking": True,
                "data": {"campaign_id": campaign.campaign_id, "variant": arm[c]},
            }
        ).model_dump(mode="json", exclude_none=True)
        for c in treated
    ]
    function = cloud.physical_id("AWS::Lambda::Function", "BroadcastRequestMessages")
    answer = cloud.client("lambda").invoke(FunctionName=function, Payload=json.dumps({"requests": requests}).encode())
    ids = json.loads(answer["Payload"].read())["message_ids"]
    for message_id in ids:
        view = expect(tour.call("GET", f"/messages/{message_id}", token=staff_token), 200, "message").body
        assert view["status"] in {"sent", "delivered"}, view
    assert all(len(mailbox(cloud, addresses[c])) == 1 for c in treated)
