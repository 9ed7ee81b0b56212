"""Identity-resolving upserts per second per core, through the domain logic.

Workload: the demo data set's good rows (`tests/bench/customers_workload.py`, ECRM_BENCH_PEOPLE
people, default 1000: about 2200 records from four sources that resolve, with merges, to one
customer per person), built as `CustomerUpsert` records before anything is timed.

Measured, one thread, each 3 times on a fresh table:
- `CustomerService.upsert` of every record, in import order (SystemClock, a publisher that only
  records, the import's source priority `erp > callcenter > shop > web`): per record a
  `BatchGetItem` of the identity claims, a `GetItem` of the matched profile(s), one
  `TransactWriteItems` (profile, claims, consent log).
- Reference: boto3's `batch_writer` putting one item per record (the record's JSON under
  `CUST#<n>`/`PROFILE`) into a fresh table: the floor of "just store the rows".
- The rules alone, no storage: `normalize_all` + `plan_resolution` + `apply_attributes` (and
  `merge_profiles` when a record joins two customers) over in-memory dicts.

The storage for both is moto's in-process DynamoDB (`mock_aws`), so the absolute numbers are
about the code path (botocore serialisation, moto's request handling and our logic), not
DynamoDB's network latency; the reference pays the same moto cost per request, which is why
it is the figure to compare with. moto's own `TransactWriteItems` deep-copies the table for each
item of a transaction (quadratic in table size), so the fix the local cloud uses
(`infra.local.dynamodb_transactions`) is installed here too, as it is in `make e2e`.

Nothing here asserts on time; the customer count is checked because a benchmark of a wrong
resolution would measure the wrong work.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator, Sequence
from typing import Any

import boto3
import pytest
from ecrm.core.clock import SystemClock
from ecrm.customers import logic
from ecrm.customers.identity import normalize_all
from ecrm.customers.models import AttributeValue
from ecrm.customers.service import CustomerService
from ecrm.customers.store import CustomerStore
from moto import mock_aws

from infra.local import dynamodb_transactions
from tests.bench.customers_workload import (
    PEOPLE,
    POLICY,
    Prepared,
    batch_write,
    count_items,
    create_table,
    dataset,
    prepared,
    print_throughput,
    reference_items,
)
from tests.bench.harness import measure, report

REGION = "us-east-1"
REPEAT = 3


class RecordingPublisher:
    """Keeps the events (so building them is part of the work) and sends nothing."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def publish_all(self, events: Any, *, correlation_id: str | None = None) -> None:
        self.events.extend(events)


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    dynamodb_transactions.install()
    with mock_aws():
        yield boto3.client("dynamodb", region_name=REGION)


def resolve_in_memory(records: Sequence[Prepared]) -> int:
    """The resolution rules over dicts: identity key -> customer, customer -> profile. Returns customers."""
    clock = SystemClock()
    owners: dict[str, str] = {}
    keys_of: dict[str, set[str]] = {}
    profiles: dict[str, dict[str, AttributeValue]] = {}
    ids = itertools.count()
    for prepared_record in records:
        record = prepared_record.record
        identities = normalize_all(record.identities, default_region=prepared_record.region)
        plan = logic.plan_resolution(identities, owners, POLICY)
        if plan.action == "create":
            survivor = f"cus_{next(ids):09d}"  # time-ordered, like the real ids
            profiles[survivor], keys_of[survivor] = {}, set()
        else:
            assert plan.survivor_id is not None
            survivor = plan.survivor_id
            for loser in plan.merged_ids:
                logic.merge_profiles(profiles[survivor], profiles.pop(loser), POLICY)
                for key in keys_of.pop(loser):
                    owners[key] = survivor
                    keys_of[survivor].add(key)
        logic.apply_attributes(
            profiles[survivor],
            record.attributes,
            source=record.source,
            observed_at=record.observed_at or clock.now(),
            policy=POLICY,
        )
        for identity in identities:
            previous = owners.get(identity.key)
            if previous is not None and previous != survivor:
                keys_of[previous].discard(identity.key)
            owners[identity.key] = survivor
            keys_of[survivor].add(identity.key)
    return len(profiles)


def test_upserts_per_second_per_core(dynamodb: Any) -> None:
    data = dataset()
    records = prepared()
    items = reference_items(p.record.model_dump_json() for p in records)
    resource = boto3.resource("dynamodb", region_name=REGION)
    tables = (f"bench-{n}" for n in itertools.count())
    outcome: dict[str, int] = {}

    def upserts() -> float:
        name = next(tables)
        create_table(dynamodb, name)
        service = CustomerService(CustomerStore(dynamodb, name), RecordingPublisher(), SystemClock(), POLICY)
        created = merged = 0
        started = time.perf_counter()
        for p in records:
            result = service.upsert(p.record, actor="import:imp_bench", default_region=p.region)
            created += result.created
            merged += len(result.merged_ids)
        elapsed = (time.perf_counter() - started) * 1000
        outcome.update(customers=created - merged, merged=merged, items=count_items(dynamodb, name))
        dynamodb.delete_table(TableName=name)
        return elapsed

    def reference() -> float:
        name = next(tables)
        create_table(dynamodb, name)
        started = time.perf_counter()
        batch_write(resource.Table(name), items)
        elapsed = (time.perf_counter() - started) * 1000
        outcome["reference_items"] = count_items(dynamodb, name)
        dynamodb.delete_table(TableName=name)
        return elapsed

    def rules_only() -> None:
        outcome["logic_customers"] = resolve_in_memory(records)

    resolve_in_memory(records[:50])  # warm the phone metadata and pydantic validators up, untimed
    baseline = measure("batch_writer put (reference)", reference, repeat=REPEAT)
    service_run = measure("CustomerService.upsert", upserts, repeat=REPEAT)
    logic_run = measure("rules only, in memory", rules_only, repeat=REPEAT)

    report(
        f"Customers: identity-resolving upserts, one thread, moto DynamoDB in process "
        f"({len(records)} records of {PEOPLE} people; ms per pass over all records)",
        [service_run, logic_run],
        baseline,
    )
    print_throughput(len(records), [service_run, logic_run], baseline)
    print(
        f"  customers resolved {outcome['customers']} ({outcome['merged']} merges; rules only: "
        f"{outcome['logic_customers']}), data set persons {data.expected_customers}; items written: "
        f"upserts {outcome['items']}, reference {outcome['reference_items']}"
    )
    assert outcome["reference_items"] == len(records)
    assert outcome["customers"] == outcome["logic_customers"] == data.expected_customers
