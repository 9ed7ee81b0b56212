"""The broadcast engine on the local cloud: request -> policy -> SES -> feedback, with faults.

Each message is counted where it lands: the local SES's mailbox. SES is throttled on a third of its calls,
a request batch is sent twice and a queue record is delivered again; every message still reaches its
recipient exactly once. A marketing email read back parses with the `email` package and carries the
RFC 8058 headers, and a POST to its one-click URL withdraws the consent at the customer store; a send to
SES's bounce simulator puts the address on the suppression list; quiet hours defer a message to the
morning of the customer's own time zone, reached by moving the local clock.
"""

from __future__ import annotations

import email
import email.policy
import json
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from ecrm.core.ids import new_id
from ecrm_ops import local_mail
from ecrm_ops.tour.context import TourContext, expect, wait_for

from infra.local.cloud import LocalCloud


def request(
    tour: TourContext,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
    form: bytes | None = None,
) -> tuple[int, Any]:
    data = form if form is not None else (json.dumps(body).encode() if body is not None else None)
    call = urllib.request.Request(tour.api + path, data=data, method=method)
    call.add_header("Content-Type", "application/x-www-form-urlencoded" if form is not None else "application/json")
    for name, value in {**({"Authorization": token} if token else {}), **(headers or {})}.items():
        call.add_header(name, value)
    try:
        with urllib.request.urlopen(call, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def new_customer(tour: TourContext, token: str, address: str, *, preferences: dict[str, Any] | None = None) -> str:
    body: dict[str, Any] = {
        "source": "web",
        "identities": [{"type": "email", "value": address}],
        "consents": [
            {
                "channel": "email",
                "purpose": "marketing",
                "state": "granted",
                "proof": {"source": "web", "captured_at": "2026-11-20T09:00:00+00:00"},
            }
        ],
    }
    customer = expect(tour.call("POST", "/customers", token=token, body=body), 201, "customer").body["customer_id"]
    if preferences:
        expect(
            tour.call("PATCH", f"/customers/{customer}", token=token, body={"preferences": preferences}), 200, "prefs"
        )
    return str(customer)


def send(tour: TourContext, token: str, customer: str, key: str, *, purpose: str = "marketing") -> str:
    body = {
        "customer_id": customer,
        "purpose": purpose,
        "content": {"email": {"subject": "Winter {{ data.season }}", "text": "Hello", "html": "<p>Hello</p>"}},
        "data": {"season": "sale"},
    }
    status, answer = request(tour, "POST", "/messages", token=token, body=body, headers={"Idempotency-Key": key})
    assert status == 202, answer
    return str(answer["message_id"])


def mailbox(cloud: LocalCloud, recipient: str) -> list[dict[str, Any]]:
    query = urlencode({"recipient": recipient, "limit": "50"})
    return list(local_mail.call("?" + query, endpoint=cloud.endpoint_url)["Messages"])


def queue_empty(cloud: LocalCloud, queue: str) -> bool:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    counts = cloud.client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=names)["Attributes"]
    return all(int(counts[n]) == 0 for n in names)


def status_of(tour: TourContext, token: str, message_id: str) -> dict[str, Any]:
    status, view = request(tour, "GET", f"/messages/{message_id}", token=token)
    assert status == 200, view
    return dict(view)


def test_messages_are_sent_once_under_throttling_and_reruns_and_feedback_closes_the_loop(
    cloud: LocalCloud, tour: TourContext, staff_token: str
) -> None:
    # Given six customers who granted email marketing, and SES throttling a third of its calls
    run = new_id("b").lower()
    addresses = [f"{run}-{n}@example.org" for n in range(6)]
    customers = [new_customer(tour, staff_token, a) for a in addresses]
    cloud.faults.load("sesv2:SendEmail=throttle@0.33,seed=3")
    try:
        # When the batch is requested twice (a re-run) with the same keys
        ids = [send(tour, staff_token, c, f"{run}-{n}") for n, c in enumerate(customers)]
        assert [send(tour, staff_token, c, f"{run}-{n}") for n, c in enumerate(customers)] == ids

        # Then every recipient gets exactly one email
        wait_for(
            lambda: all(status_of(tour, staff_token, i)["status"] in {"sent", "delivered"} for i in ids),
            timeout=90,
            interval=1,
            what="every message sent",
        )
    finally:
        cloud.faults.load("")
    assert [len(mailbox(cloud, a)) for a in addresses] == [1] * 6

    # When the email queue delivers one of them again (a duplicated SQS delivery)
    queue = cloud.physical_id("AWS::SQS::Queue", "BroadcastSendEmailQueue")
    duplicate = {
        "message_id": ids[1],
        "customer_id": customers[1],
        "channel": "email",
        "address": addresses[1],
        "purpose": "marketing",
        "topic": None,
        "content": {"subject": "again", "text": "again"},
        "tags": {"message_id": ids[1]},
    }
    cloud.client("sqs").send_message(QueueUrl=queue, MessageBody=json.dumps(duplicate))
    wait_for(lambda: queue_empty(cloud, queue), timeout=60, what="the duplicate consumed")
    # Then it is dropped: still one email
    assert len(mailbox(cloud, addresses[1])) == 1

    # And the marketing email parses and carries RFC 8058's one-click headers
    (sent,) = mailbox(cloud, addresses[0])
    mime = local_mail.call(f"/{sent['MessageId']}", endpoint=cloud.endpoint_url)["Mime"]
    parsed = email.message_from_string(mime, policy=email.policy.default)
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = str(parsed["List-Unsubscribe"]).strip("<>").split(">")[0]
    assert url.startswith("https://")
    assert parsed.get_body(preferencelist=("plain",)) is not None

    # When the recipient's mail client POSTs the one-click URL (to this local API)
    link = urlsplit(url)
    path = "/unsubscribe?" + link.query
    status, page = request(tour, "POST", path, form=b"List-Unsubscribe=One-Click")
    assert status == 200, page
    assert request(tour, "POST", path, form=b"List-Unsubscribe=One-Click")[0] == 200  # idempotent

    # Then the customer store holds the withdrawal
    held = expect(tour.call("GET", f"/customers/{customers[0]}", token=staff_token), 200, "customer").body
    assert [(c["channel"], c["purpose"], c["state"]) for c in held["consents"]] == [("email", "marketing", "denied")]

    # And a later marketing message to them is not sent, with its reason
    later = send(tour, staff_token, customers[0], f"{run}-later")
    wait_for(lambda: status_of(tour, staff_token, later)["status"] == "suppressed", timeout=60, what="suppressed")
    assert status_of(tour, staff_token, later)["reason"] == "no_consent"


def test_a_hard_bounce_puts_the_address_on_the_suppression_list(
    cloud: LocalCloud, tour: TourContext, staff_token: str
) -> None:
    # Given a customer whose address is SES's bounce simulator
    bouncing = "bounce@simulator.amazonses.com"
    customer = new_customer(tour, staff_token, bouncing)
    # When a transactional message is sent to them
    message_id = send(tour, staff_token, customer, new_id("bounce"), purpose="transactional")
    # Then SES's bounce comes back and the address is suppressed
    wait_for(lambda: status_of(tour, staff_token, message_id)["status"] == "bounced", timeout=90, what="bounced")

    def listed() -> bool:
        status, page = request(tour, "GET", "/suppressions?limit=100", token=staff_token)
        return status == 200 and any(s["address"] == bouncing and s["reason"] == "hard_bounce" for s in page["items"])

    wait_for(listed, timeout=30, what="the bounce on the suppression list")


def test_quiet_hours_defer_to_the_customers_morning(cloud: LocalCloud, tour: TourContext, staff_token: str) -> None:
    # Given a customer in Tokyo inside quiet hours that end two hours from now, local time
    address = f"{new_id('q').lower()}@example.org"
    tokyo_hour = (cloud.clock.now().hour + 9) % 24
    quiet = {"start": f"{(tokyo_hour - 1) % 24:02d}:00", "end": f"{(tokyo_hour + 2) % 24:02d}:00"}
    customer = new_customer(tour, staff_token, address, preferences={"time_zone": "Asia/Tokyo", "quiet_hours": quiet})
    # When a marketing email is requested now
    requested_at = cloud.clock.now()
    message_id = send(tour, staff_token, customer, new_id("quiet"))
    # Then it is deferred to the end of the quiet hours
    wait_for(lambda: status_of(tour, staff_token, message_id)["status"] == "deferred", timeout=60, what="deferred")
    view = status_of(tour, staff_token, message_id)
    assert view["reason"] == "quiet_hours"
    assert mailbox(cloud, address) == []
    top_of_hour = requested_at.replace(minute=0, second=0, microsecond=0)
    assert datetime.fromisoformat(view["deferred_until"]) == top_of_hour + timedelta(hours=2)
    # And once the clock passes that time, it is sent
    cloud.clock.advance(timedelta(hours=3))
    # (the release runs every minute; invoking it now spares the test the wait for the next one)
    release = cloud.physical_id("AWS::Lambda::Function", "BroadcastReleaseDeferred")
    cloud.client("lambda").invoke(FunctionName=release, Payload=b"{}")
    wait_for(lambda: mailbox(cloud, address), timeout=90, interval=1, what="the deferred email sent")
    assert len(mailbox(cloud, address)) == 1


def test_a_message_by_template_id_renders_the_stored_version(
    cloud: LocalCloud, tour: TourContext, staff_token: str
) -> None:
    # Given a template stored by personalization and a customer with a first name
    template = {
        "name": "Welcome",
        "channel": "email",
        "default_locale": "en",
        "variants": {"en": {"subject": "Welcome {{ customer.first_name }}", "html": "<p>Hi</p>", "text": "Hi"}},
    }
    status, saved = request(tour, "POST", "/templates", token=staff_token, body=template)
    assert status == 201, saved
    key = new_id("tpl").lower()
    address = f"{key}@example.org"
    body = {"source": "web", "identities": [{"type": "email", "value": address}], "attributes": {"first_name": "Ines"}}
    customer = expect(tour.call("POST", "/customers", token=staff_token, body=body), 201, "customer").body[
        "customer_id"
    ]
    # When a transactional message names the template by id (broadcast asks personalization's function)
    message = {
        "customer_id": customer,
        "purpose": "transactional",
        "content": {"email": {"template_id": saved["template_id"]}},
    }
    status, answer = request(
        tour, "POST", "/messages", token=staff_token, body=message, headers={"Idempotency-Key": key}
    )
    assert status == 202, answer
    # Then the version is pinned on the message and the email reads the customer's name
    wait_for(
        lambda: status_of(tour, staff_token, answer["message_id"])["status"] in {"sent", "delivered"},
        timeout=90,
        what="the templated message sent",
    )
    assert status_of(tour, staff_token, answer["message_id"])["templates"]["email"]["version"] == 1
    (sent,) = mailbox(cloud, address)
    mime = local_mail.call(f"/{sent['MessageId']}", endpoint=cloud.endpoint_url)["Mime"]
    assert email.message_from_string(mime, policy=email.policy.default)["Subject"] == "Welcome Ines"
    # And an unknown template is a 422 problem
    unknown = {**message, "content": {"email": {"template_id": "tpl_" + "0" * 26}}}
    status, problem = request(tour, "POST", "/messages", token=staff_token, body=unknown)
    assert (status, problem["code"] if "code" in problem else problem["type"].rsplit("/", 1)[1]) == (
        422,
        "template-unusable",
    )
