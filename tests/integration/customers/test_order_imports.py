"""An orders import through the real pipeline (moto S3 and DynamoDB): the customer store's steps resolve each
order's customer and hand it over through its outbox; the transactions engine's consumer places it, with its
lines, totals and historic date, once per source and order reference, and its events earn (or not) as chosen."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from ecrm.core.clock import FixedClock
from ecrm.customers import import_jobs
from ecrm.customers.import_jobs import ImportDesk, ImportPipeline
from ecrm.customers.models import CustomerUpsert, IdentityIn, ImportRequest, ImportStatus
from ecrm.customers.order_import_chunks import OrderReferences
from ecrm.customers.service import CustomerService
from ecrm.transactions.loyalty_service import LoyaltyService
from ecrm.transactions.loyalty_store import LoyaltyStore
from ecrm.transactions.models import OrderPlaced, OrderStatusChanged
from ecrm.transactions.order_service import OrderService
from ecrm.transactions.order_store import OrderStore

from functions.transactions import on_order_event, on_order_import
from tests.integration.customers.conftest import STREAMS_ENDPOINT, RecordingPublisher
from tests.integration.outbox import OutboxDrain, StreamTail
from tests.integration.transactions.conftest import create_table
from tests.samples import sqs_batch
from tests.unit.fakes import bus_event_from_entry

BUCKET = "imports"
ORDERS_TABLE = "ecrm-transactions"
MAPPING = {
    "Order No": "order_ref",
    "E-mail": "email",
    "Date": "placed_at",
    "Cur": "currency",
    "Channel": "channel",
    "Shop": "store",
    "State": "status",
    "Article": "sku",
    "Description": "name",
    "Qty": "quantity",
    "Price": "unit_price",
    "Group": "category",
}
HEADER = "Order No,E-mail,Date,Cur,Channel,Shop,State,Article,Description,Qty,Price,Group"
FILE = [
    "A-1,alice@example.com,2025-03-01T10:00:00Z,EUR,store,Berlin,delivered,SHOE-1,Trail shoe,2,49.99,shoes",
    "A-1,alice@example.com,2025-03-01T10:00:00Z,EUR,store,Berlin,delivered,SOCK-1,Socks,3,5.99,socks",
    "A-2,bob@example.com,2025-04-02,EUR,web,,cancelled,HAT-1,Hat,1,20,fashion",
    "A-3,carol@example.com,2025-05-03,EUR,web,,,BAG-1,Bag,1,30.00,bags",
    "A-3,carol@example.com,2025-05-03,EUR,web,,,BAG-2,Bag,two,30.00,bags",
]


@pytest.fixture
def s3(dynamodb: Any) -> Any:  # inside the same mock_aws as the customer table
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def orders(dynamodb: Any, clock: FixedClock) -> OrderService:
    create_table(dynamodb, ORDERS_TABLE)
    return OrderService(OrderStore(dynamodb, ORDERS_TABLE), clock)


@pytest.fixture
def order_outbox(orders: OrderService, dynamodb: Any) -> OutboxDrain:
    streams = boto3.client("dynamodbstreams", region_name="us-east-1", endpoint_url=STREAMS_ENDPOINT)
    return OutboxDrain(StreamTail(dynamodb, streams, ORDERS_TABLE))


def upload(service: CustomerService, s3: Any, rows: list[str], **request: Any) -> str:
    desk = ImportDesk(service.store, s3, BUCKET, service.clock)
    ticket = desk.open(ImportRequest.model_validate({"source": "erp", "kind": "orders", "mapping": MAPPING, **request}))
    body = (HEADER + "\n" + "\n".join(rows) + "\n").encode()
    s3.put_object(Bucket=BUCKET, Key=import_jobs.upload_key(ticket.import_id, "csv"), Body=body)
    return ticket.import_id


def run(pipeline: ImportPipeline, import_id: str) -> list[dict[str, Any]]:
    prepared = pipeline.prepare(import_jobs.upload_key(import_id, "csv"), import_id)
    for chunk in prepared["chunks"]:
        pipeline.chunk(chunk["import_id"], chunk["index"], chunk["key"])
    pipeline.finish(import_id)
    return list(prepared["chunks"])


def status_of(service: CustomerService, s3: Any, import_id: str) -> ImportStatus:
    return ImportDesk(service.store, s3, BUCKET, service.clock).status(import_id)


def report_of(s3: Any, status: ImportStatus) -> dict[int, str]:
    if status.error_report_key is None:
        return {}
    report = s3.get_object(Bucket=BUCKET, Key=status.error_report_key)["Body"].read().decode()
    return {int(row["row"]): row["reason"] for row in csv.DictReader(io.StringIO(report))}


def handed_over(publisher: RecordingPublisher, *, since: int = 0) -> list[dict[str, Any]]:
    """The bus entries of `OrderImportRequested` the customer store's outbox relayed."""
    publisher.events  # noqa: B018 - drains the outbox onto the fake bus
    assert publisher.outbox is not None
    accepted = publisher.outbox.bus.accepted[since:]
    return [e for e in accepted if e["DetailType"] == "OrderImportRequested"]


def deliver(entries: list[dict[str, Any]], orders: OrderService, context: Any, *, times: int = 1) -> dict[str, Any]:
    bodies = [json.dumps(bus_event_from_entry(e, f"eb-{n}")) for n, e in enumerate(entries)] * times
    handler: Any = on_order_import.handler
    return handler(sqs_batch(bodies), context, orders)


def customer_of(service: CustomerService, email: str) -> str:
    return service.lookup(IdentityIn(type="email", value=email)).customer_id


def test_orders_are_placed_with_their_lines_totals_date_and_customer(
    service: CustomerService,
    s3: Any,
    publisher: RecordingPublisher,
    orders: OrderService,
    order_outbox: OutboxDrain,
    lambda_context: Any,
) -> None:
    # Given Alice is a customer already, and an ERP file of three orders, one with a bad quantity
    alice = service.upsert(
        CustomerUpsert(source="shop", identities=[IdentityIn(type="email", value="alice@example.com")])
    ).customer_id
    pipeline = ImportPipeline(service, s3, BUCKET, publisher, chunk_rows=1)
    import_id = upload(service, s3, FILE)
    # When it is imported in chunks of one row, and the orders handed over reach the transactions engine
    chunks = run(pipeline, import_id)
    result = deliver(handed_over(publisher), orders, lambda_context)
    # Then no order was split across chunks: A-1's two rows are one chunk
    assert len(chunks) == 3
    assert result == {"batchItemFailures": []}
    # And Alice's order has both lines, its total and its own date and status
    (order,) = orders.for_customer(alice)
    assert [(line.sku, line.quantity, line.unit_price_minor) for line in order.lines] == [
        ("SHOE-1", 2, 4999),
        ("SOCK-1", 3, 599),
    ]
    assert (order.total_minor, order.currency, order.channel, order.store, order.external_ref, order.status) == (
        2 * 4999 + 3 * 599,
        "EUR",
        "store",
        "Berlin",
        "A-1",
        "delivered",
    )
    assert order.placed_at == datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    # And Bob, whom nobody knew, was created with his cancelled order
    (cancelled,) = orders.for_customer(customer_of(service, "bob@example.com"))
    assert (cancelled.status, cancelled.total_minor) == ("cancelled", 2000)
    # And the bad row and its order's other row are in the report; nothing of A-3 (nor Carol) exists
    status = status_of(service, s3, import_id)
    assert (status.processed_rows, status.imported_rows, status.error_rows, status.created_customers) == (5, 3, 2, 1)
    reasons = report_of(s3, status)
    assert sorted(reasons) == [4, 5]
    assert "quantity" in reasons[5]
    assert "row 5" in reasons[4]
    assert service.store.owners_of(["email:|carol@example.com"]) == {}
    # And the engine's events are the API's, at the order's date, without points (the backfill default)
    events = order_outbox.drain()
    placed = [e for e in events if isinstance(e, OrderPlaced)]
    assert sorted(e.placed_at.date().isoformat() for e in placed) == ["2025-03-01", "2025-04-02"]
    assert not any(e.earns_points for e in placed)
    assert [e.status for e in events if isinstance(e, OrderStatusChanged)] == ["cancelled"]


def test_a_file_imported_again_places_nothing_new_and_a_changed_order_is_reported(
    service: CustomerService, s3: Any, publisher: RecordingPublisher, orders: OrderService, lambda_context: Any
) -> None:
    pipeline = ImportPipeline(service, s3, BUCKET, publisher)
    good = FILE[:3]
    first = upload(service, s3, good)
    run(pipeline, first)
    entries = handed_over(publisher)
    deliver(entries, orders, lambda_context, times=2)  # and every event delivered twice
    alice = customer_of(service, "alice@example.com")
    assert len(orders.for_customer(alice)) == 1
    # When the same orders come again in another export, A-2 now at another price
    before = len(publisher.outbox.bus.accepted)  # type: ignore[union-attr]
    again = upload(service, s3, [FILE[1], FILE[0], FILE[2].replace(",20,", ",25,")])
    run(pipeline, again)
    # Then nothing is handed over again: A-1 is unchanged, A-2 is reported, not applied
    assert handed_over(publisher, since=before) == []
    status = status_of(service, s3, again)
    assert (status.unchanged_rows, status.imported_rows, status.error_rows) == (2, 0, 1)
    assert "imported before" in report_of(s3, status)[3]
    assert [o.total_minor for o in orders.for_customer(customer_of(service, "bob@example.com"))] == [2000]
    # And the transactions engine itself refuses the changed order under the same key: the API's 422
    changed = json.loads(entries[-1]["Detail"])
    changed["data"]["order"]["lines"][0]["unit_price_minor"] = 2500
    result = deliver([entries[0], {**entries[-1], "Detail": json.dumps(changed)}], orders, lambda_context)
    assert [failure["itemIdentifier"][-1] for failure in result["batchItemFailures"]] == ["1"]  # kept for the DLQ


@pytest.mark.parametrize("dies", ["before", "after"])
def test_a_chunk_whose_worker_died_hands_each_order_over_once(
    service: CustomerService,
    s3: Any,
    publisher: RecordingPublisher,
    orders: OrderService,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    dies: str,
) -> None:
    # Given the worker dies at the second order's hand-over, before or after its transaction committed
    real = OrderReferences.hand_over
    calls = {"n": 0}

    def dying(self: OrderReferences, *args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2 and dies == "before":
            raise RuntimeError("worker died")
        real(self, *args, **kwargs)
        if calls["n"] == 2:
            raise RuntimeError("worker died")

    monkeypatch.setattr(OrderReferences, "hand_over", dying)
    pipeline = ImportPipeline(service, s3, BUCKET, publisher)
    import_id = upload(service, s3, FILE[:3])
    prepared = pipeline.prepare(import_jobs.upload_key(import_id, "csv"), import_id)
    (chunk,) = prepared["chunks"]
    with pytest.raises(RuntimeError):
        pipeline.chunk(import_id, chunk["index"], chunk["key"])
    # When Step Functions retries the chunk, twice
    pipeline.chunk(import_id, chunk["index"], chunk["key"])
    pipeline.chunk(import_id, chunk["index"], chunk["key"])
    pipeline.finish(import_id)
    # Then each order was handed over once, and counted once
    entries = handed_over(publisher)
    assert sorted(json.loads(e["Detail"])["data"]["order_ref"] for e in entries) == ["A-1", "A-2"]
    status = status_of(service, s3, import_id)
    counts = (status.processed_rows, status.imported_rows, status.error_rows, status.created_customers)
    assert counts == (3, 3, 0, 2)  # Bob was created by the attempt that died, and is counted
    deliver(entries, orders, lambda_context)
    assert len(orders.for_customer(customer_of(service, "alice@example.com"))) == 1


def test_an_import_that_earns_points_earns_them_and_a_backfill_does_not(
    service: CustomerService,
    s3: Any,
    publisher: RecordingPublisher,
    orders: OrderService,
    order_outbox: OutboxDrain,
    dynamodb: Any,
    clock: FixedClock,
    lambda_context: Any,
) -> None:
    loyalty = LoyaltyService(LoyaltyStore(dynamodb, ORDERS_TABLE), clock)
    pipeline = ImportPipeline(service, s3, BUCKET, publisher)
    recent = "2026-11-20T09:00:00Z"
    backfill = [FILE[0]]
    feed = [FILE[2].replace("bob@", "dan@").replace("2025-04-02", recent).replace("cancelled", "paid")]
    run(pipeline, upload(service, s3, backfill))
    run(pipeline, upload(service, s3, feed, earn_points=True))
    deliver(handed_over(publisher), orders, lambda_context)
    order_outbox.drain()
    placed = [e for e in order_outbox.bus.accepted if e["DetailType"] == "OrderPlaced"]
    bodies = [json.dumps(bus_event_from_entry(e, f"eb-{n}")) for n, e in enumerate(placed)]
    handler: Any = on_order_event.handler
    assert handler(sqs_batch(bodies), lambda_context, loyalty) == {"batchItemFailures": []}
    assert loyalty.account(customer_of(service, "alice@example.com")).balance == 0
    assert loyalty.account(customer_of(service, "dan@example.com")).balance > 0


def test_an_order_another_chunk_hands_over_first_is_not_handed_over_twice(
    service: CustomerService, s3: Any, publisher: RecordingPublisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a parallel chunk hands A-1 over between this chunk's look-up and its own hand-over
    pipeline = ImportPipeline(service, s3, BUCKET, publisher)
    run(pipeline, upload(service, s3, FILE[:2]))
    real_get = OrderReferences.get
    looked_up: set[str] = set()

    def late(self: OrderReferences, ref_pk: str) -> Any:
        if ref_pk not in looked_up:
            looked_up.add(ref_pk)
            return None  # not there yet when this chunk looked
        return real_get(self, ref_pk)

    monkeypatch.setattr(OrderReferences, "get", late)
    before = len(handed_over(publisher))
    # When this chunk (the same order, in another export) hands it over
    again = upload(service, s3, [FILE[1], FILE[0]])
    run(pipeline, again)
    # Then its transaction finds the reference taken: nothing handed over, the rows unchanged
    assert len(handed_over(publisher)) == before
    status = status_of(service, s3, again)
    assert (status.unchanged_rows, status.imported_rows, status.error_rows) == (2, 0, 0)
