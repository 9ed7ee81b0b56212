"""`ecrm demo`: the platform on the local cloud, and the scripted tour of what it does.

Each engine adds its steps to the tour as it lands. A step is a function that gets the running
cloud's `TourContext` and raises `AssertionError` with a readable reason when something is wrong;
`ecrm demo --once` exits non-zero if any step failed.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ecrm_ops.local_cloud import print_banner, run_until_interrupted, start_cloud
from ecrm_ops.tour.context import TourContext, expect, http, wait_for

Step = Callable[[TourContext], str]
TOUR: list[tuple[str, Step]] = []


def tour_step(title: str) -> Callable[[Step], Step]:
    def register(step: Step) -> Step:
        TOUR.append((title, step))
        return step

    return register


# -- the platform slice -------------------------------------------------------------------------
@tour_step("public health check")
def _health(ctx: TourContext) -> str:
    body = expect(ctx.call("GET", "/health"), 200, "GET /health").body
    return f"GET /health -> 200 {body['status']} (version {body['version']})"


@tour_step("the API refuses callers without the right token")
def _auth(ctx: TourContext) -> str:
    anonymous = expect(ctx.call("GET", "/whoami"), 401, "GET /whoami without a token")
    customer = expect(
        ctx.call("GET", "/whoami", token=ctx.token(customer_id="cus_demo_0001")), 403, "GET /whoami as a customer"
    )
    staff = expect(ctx.call("GET", "/whoami", token=ctx.token(group="marketer")), 200, "GET /whoami as staff")
    if staff.body["groups"] != ["marketer"]:
        raise AssertionError(f"whoami groups: {staff.body['groups']}")
    return (
        f"no token -> {anonymous.status} {anonymous.body['title']}; customer -> {customer.status} "
        f"{customer.body['title']}; marketer -> 200 {staff.body['email']}"
    )


@tour_step("bad input is a 4xx problem naming the field")
def _bad_input(ctx: TourContext) -> str:
    result = expect(
        ctx.call("POST", "/pings", token=ctx.token(group="marketer"), body={"message": 42}),
        422,
        "POST /pings with a number as message",
    )
    if "message" not in result.body["detail"] or "problem+json" not in result.headers.get("Content-Type", ""):
        raise AssertionError(f"problem does not name the field: {result.body}")
    return f"POST /pings {{message: 42}} -> 422 {result.body['detail']}"


@tour_step("an event travels API -> EventBridge -> SQS -> Lambda -> DynamoDB")
def _ping(ctx: TourContext) -> str:
    token = ctx.token(group="marketer")
    accepted = expect(ctx.call("POST", "/pings", token=token, body={"message": "hello, eCRM"}), 202, "POST /pings")
    ping_id = accepted.body["ping_id"]
    record = wait_for(
        lambda: (r := ctx.call("GET", f"/pings/{ping_id}", token=token)).status == 200 and r.body,
        what=f"ping {ping_id} to arrive",
    )
    return f"ping {ping_id} recorded after {record['round_trip_ms']} ms"


@tour_step("a poison event is retried, then parked in the dead-letter queue")
def _poison(ctx: TourContext) -> str:
    cloud = ctx.cloud
    events = cloud.client("events")
    poison = {
        "metadata": {
            "id": "evt_poison",
            "version": "1",
            "correlation_id": "cor_demo",
            "occurred_at": "2026-01-01T00:00:00Z",
        },
        "data": {"message": "no ping_id here"},
    }
    events.put_events(
        Entries=[
            {
                "EventBusName": cloud.state.event_bus_name,
                "Source": "ecrm.platform",
                "DetailType": "PingRequested",
                "Detail": json.dumps(poison),
            }
        ]
    )
    sqs = cloud.client("sqs")
    dlq_url = cloud.physical_id("AWS::SQS::Queue", "PlatformPingConsumerDeadLetterQueue")

    def parked() -> list[dict[str, Any]]:
        got = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, AttributeNames=["All"])
        return [m for m in got.get("Messages", []) if "evt_poison" in m["Body"]]

    messages = wait_for(parked, timeout=40, interval=1, what="the poison record in the DLQ")
    receives = messages[0]["Attributes"]["ApproximateReceiveCount"]
    for message in messages:
        sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
    return f"poison record received {receives} times, then moved to the DLQ (and cleared)"


@tour_step("the self-check state machine runs on Step Functions")
def _selfcheck(ctx: TourContext) -> str:
    sfn = ctx.cloud.client("stepfunctions")
    arn = ctx.cloud.physical_id("AWS::StepFunctions::StateMachine", "PlatformSelfCheck")
    execution = sfn.start_execution(stateMachineArn=arn, name=f"demo-{uuid.uuid4()}", input="{}")["executionArn"]
    described = wait_for(
        lambda: (d := sfn.describe_execution(executionArn=execution))["status"] != "RUNNING" and d,
        timeout=60,
        what="the self-check execution",
    )
    if described["status"] != "SUCCEEDED":
        raise AssertionError(f"self-check {described['status']}: {described.get('cause')}")
    output = json.loads(described["output"])
    return f"execution SUCCEEDED, round trip {output['round_trip_ms']} ms"


# -- engine 1: the customer store ---------------------------------------------------------------
DEMO_PEOPLE = int(os.environ.get("ECRM_DEMO_PEOPLE", "2000"))


@tour_step("customers from four sources resolve to one profile per person")
def _multi_source_import(ctx: TourContext) -> str:
    from ecrm_ops.customers.demo_data import generate, write
    from ecrm_ops.customers.importer import run_import

    dataset = generate(people=DEMO_PEOPLE, seed=7)
    folder = Path(tempfile.mkdtemp(prefix="ecrm-demo-"))
    files = write(dataset, folder)
    token = ctx.token(group="admin")
    totals = {"rows": 0, "errors": 0, "created": 0, "merged": 0}
    per_source = []
    for source, path in files.items():
        outcome = run_import(
            str(path),
            source=source,
            mapping_file=str(path.with_suffix(".mapping.json")),
            api_url=ctx.api,
            token=token,
            progress=False,
        )
        status = outcome.status
        totals["rows"] += status["total_rows"] or 0
        totals["errors"] += status["error_rows"]
        totals["created"] += status["created_customers"]
        totals["merged"] += status["merged_customers"]
        per_source.append(f"{source} {status['total_rows']} rows/{outcome.seconds:.0f}s")
    customers = totals["created"] - totals["merged"]
    ctx.facts["demo_dataset"] = dataset
    again = run_import(
        str(files["web"]),
        source="web",
        mapping_file=str(files["web"].with_suffix(".mapping.json")),
        api_url=ctx.api,
        token=token,
        progress=False,
    )
    if again.status["status"] != "duplicate":
        raise AssertionError(f"re-importing the same file should change nothing: {again.status}")
    if customers != dataset.expected_customers:
        raise AssertionError(f"{customers} customers, the data set holds {dataset.expected_customers} people")
    return (
        f"{totals['rows']} records ({', '.join(per_source)}) -> {customers} customers "
        f"({totals['merged']} merges, {totals['errors']} bad rows reported); ground truth "
        f"{dataset.expected_customers} people; re-import of web.csv: duplicate, nothing changed"
    )


@tour_step("a customer sees only themselves; staff see the 360 view")
def _customer_views(ctx: TourContext) -> str:
    staff = ctx.token(group="marketer")
    a = expect(
        ctx.call(
            "POST",
            "/customers",
            token=staff,
            body={
                "source": "web",
                "identities": [{"type": "email", "value": "demo.customer.a@example.com"}],
                "attributes": {"first_name": "Avery"},
            },
        ),
        201,
        "POST /customers",
    ).body["customer_id"]
    b = expect(
        ctx.call(
            "POST",
            "/customers",
            token=staff,
            body={"source": "web", "identities": [{"type": "email", "value": "demo.customer.b@example.com"}]},
        ),
        201,
        "POST /customers",
    ).body["customer_id"]
    mine = ctx.token(customer_id=a)
    me = expect(ctx.call("GET", "/me", token=mine), 200, "GET /me").body
    if me["customer_id"] != a:
        raise AssertionError("GET /me returned another customer")
    expect(ctx.call("GET", f"/customers/{b}", token=mine), 403, "a customer reading another customer")
    expect(
        ctx.call(
            "PUT", "/me/consents/email/marketing", token=mine, body={"state": "granted", "notice_version": "2026-11"}
        ),
        200,
        "PUT /me/consents",
    )
    view = expect(ctx.call("GET", f"/customers/{a}", token=staff), 200, "GET /customers/{id}").body
    return (
        f"/me -> {a}; /customers/{{other}} with a customer token -> 403; staff 360 view has "
        f"{len(view['identities'])} identity, {len(view['consents'])} consent with proof"
    )


@tour_step("GDPR: export, then erasure acknowledged by every engine")
def _gdpr(ctx: TourContext) -> str:
    admin = ctx.token(group="admin")
    created = expect(
        ctx.call(
            "POST",
            "/customers",
            token=admin,
            body={
                "source": "callcenter",
                "identities": [
                    {"type": "email", "value": "forget.me@example.com"},
                    {"type": "phone", "value": "+14155552671"},
                ],
                "attributes": {"first_name": "Robin"},
            },
        ),
        201,
        "POST /customers",
    ).body["customer_id"]
    expect(
        ctx.call(
            "POST",
            f"/customers/{created}/interactions",
            token=admin,
            body={"type": "call", "occurred_at": "2026-11-20T09:30:00Z", "source": "callcenter"},
        ),
        201,
        "POST interaction",
    )
    export = expect(ctx.call("GET", f"/customers/{created}/export", token=admin), 200, "GET export").body
    accepted = expect(ctx.call("DELETE", f"/customers/{created}", token=admin), 202, "DELETE /customers/{id}").body
    done = wait_for(
        lambda: (
            (e := ctx.call("GET", f"/erasures/{accepted['request_id']}", token=admin)).body["status"] == "completed"
            and e.body
        ),
        timeout=30,
        what="the erasure to complete",
    )
    expect(ctx.call("GET", f"/customers/{created}", token=admin), 404, "the erased customer")
    expect(ctx.call("GET", "/customers?email=forget.me@example.com", token=admin), 404, "lookup of an erased email")
    return (
        f"export held {len(export['timeline'])} interaction(s) and {len(export['customer']['identities'])} "
        f"identities; erasure {accepted['request_id']} acknowledged by {', '.join(done['acknowledged'])}; "
        f"the id and the email no longer resolve"
    )


# -- event collection -----------------------------------------------------------------------------
DEMO_VISITORS = int(os.environ.get("ECRM_DEMO_VISITORS", "100"))


@tour_step("a web shop's tracking: anonymous browsing, sign-in, stitching, the lake")
def _collection(ctx: TourContext) -> str:
    import base64
    from collections import Counter

    from ecrm.collect.logic import sign_user_id
    from ecrm.lake import LocalLake

    from ecrm_ops.collect.demo_sessions import generate as sessions

    admin = ctx.token(group="admin")
    source = expect(
        ctx.call(
            "POST", "/sources", token=admin, body={"name": "shopweb", "kind": "web", "description": "the demo shop"}
        ),
        201,
        "POST /sources",
    )
    basic = "Basic " + base64.b64encode(f"{source.body['write_key']}:".encode()).decode()
    stream = sessions(DEMO_VISITORS)
    # The shop's backend signs each signed-in user id (ADR 9): a web source's write key is public, so
    # only a signed identify may link the browser's anonymous journey to the shop's user.
    for message in stream.messages:
        if message["type"] == "identify":
            message["context"]["userHash"] = sign_user_id(source.body["identity_secret"], message["userId"])
    # Someone holding the public key claims another customer's email from their own, signed-in browser.
    victim = expect(
        ctx.call(
            "POST",
            "/customers",
            token=ctx.token(group="marketer"),
            body={"source": "erp", "identities": [{"type": "email", "value": "tour.victim@example.com"}]},
        ),
        201,
        "POST /customers (the customer whose email is claimed)",
    ).body["customer_id"]
    claimant = next(v for v in stream.visitors if v.identified)
    claim = {
        "type": "identify",
        "messageId": "tour-unsigned-claim",
        "anonymousId": claimant.anonymous_id,
        "timestamp": "2026-11-23T23:59:00Z",
        "traits": {"email": "tour.victim@example.com"},
    }
    messages = [*stream.messages, claim]
    accepted = 0
    for start in range(0, len(messages), 100):
        result = http("POST", f"{ctx.api}/v1/batch", token=basic, body={"batch": messages[start : start + 100]})
        if result.status != 200:
            raise AssertionError(f"POST /v1/batch -> {result.status}: {result.body}")
        accepted += result.body["accepted"]
    identified = [v for v in stream.visitors if v.identified]
    expected = {v.user_id: len([m for m in v.messages if m["type"] != "identify"]) for v in identified}

    def stitched() -> int:
        total = 0
        for user_id, count in expected.items():
            found = ctx.call("GET", f"/customers?external_id=shopweb:{user_id}", token=admin)
            if found.status != 200:
                return 0
            page = ctx.call("GET", f"/customers/{found.body['customer_id']}/timeline?limit=200", token=admin).body
            if len(page["items"]) < count:
                return 0
            total += len(page["items"])
        return total

    sqs = ctx.cloud.client("sqs")
    queue = ctx.cloud.physical_id("AWS::SQS::Queue", "CustomersCollectedEventConsumerQueue")

    def drained() -> bool:  # cheap to ask, unlike reading every timeline
        counts = sqs.get_queue_attributes(
            QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return all(v == "0" for v in counts.values())

    wait_for(drained, timeout=600, interval=2, what="the customer store to process the collected events")
    on_known = wait_for(stitched, timeout=60, interval=3, what="every signed-in visitor's journey on their timeline")
    trackable = len([m for m in messages if m["type"] != "identify"])
    owner = expect(
        ctx.call("GET", "/customers?email=tour.victim@example.com", token=admin), 200, "GET /customers?email="
    ).body
    claimant_customer = expect(
        ctx.call("GET", f"/customers?external_id=shopweb:{claimant.user_id}", token=admin), 200, "claimant"
    ).body
    claimed = [c for c in claimant_customer.get("claims", []) if c["field"] == "email"]
    if (
        owner["customer_id"] != victim
        or owner["merged_ids"]
        or owner["customer_id"] == claimant_customer["customer_id"]
    ):
        raise AssertionError(f"an unsigned identify claiming another customer's email changed them: {owner}")
    if not any(c["value"] == "tour.victim@example.com" for c in claimed):
        raise AssertionError(f"the unsigned claim is not kept on the claimant: {claimant_customer.get('claims')}")
    cloud = ctx.cloud
    bucket = cloud.physical_id("AWS::S3::Bucket", "LakeBucket")
    lake = LocalLake(cloud.client("s3"), bucket)
    rows = lake.query("select type, count(*) as n from {collected_events} group by type order by type")
    per_type = Counter({r["type"]: r["n"] for r in rows})
    if sum(per_type.values()) < accepted:
        raise AssertionError(f"the lake holds {sum(per_type.values())} events, {accepted} were accepted")
    return (
        f"{accepted} events from {len(stream.visitors)} visitors; in the lake by type: "
        f"{', '.join(f'{k} {v}' for k, v in sorted(per_type.items()))}; {len(identified)} visitors signed in and "
        f"{on_known} of {trackable} page/track events ({on_known / trackable:.0%}) are stitched to known "
        "customers, including everything browsed before sign-in; an unsigned identify claiming another "
        "customer's email merged nothing and is kept as a claim"
    )


import ecrm_ops.tour.analysis  # noqa: E402, F401 - registers the analysis steps after the ones above


def run_tour(ctx: TourContext, echo: Callable[[str], None] = print) -> int:
    failures = 0
    for number, (title, step) in enumerate(TOUR, start=1):
        started = time.monotonic()
        try:
            outcome = step(ctx)
            echo(f"  [ok]   {number}. {title}: {outcome} ({time.monotonic() - started:.1f}s)")
        except Exception as exc:
            failures += 1
            echo(f"  [FAIL] {number}. {title}: {exc}")
    echo(f"tour: {len(TOUR) - failures} passed, {failures} failed")
    return failures


def run_demo(*, once: bool, api_port: int = 0) -> int:
    cloud = start_cloud(api_port=api_port)
    ctx = TourContext(cloud)
    if not once:
        print(f"A marketer's token (valid 1 hour):\n{ctx.token(group='marketer')}\n", flush=True)
        run_until_interrupted(cloud)
        return 0
    try:
        print_banner(cloud)
        print("The tour:", flush=True)
        failures = run_tour(ctx)
    finally:
        cloud.stop()
    return 1 if failures else 0
