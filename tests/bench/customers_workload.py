"""The customer benchmarks' shared workload: the demo data set, its records, and the plain reference.

The data set is `ecrm_ops.customers.demo_data.generate(people=ECRM_BENCH_PEOPLE, seed=7)` (default
1000 people, about 2200 rows in four source files). Its rows become `CustomerUpsert` records the
way an import chunk makes them (`read_rows` + `row_to_upsert`, bad rows skipped), in import order
(web, callcenter, shop, erp), each with its file's default phone region.

The reference is what storing rows costs without any domain logic: boto3's `batch_writer`
putting one item per row (`pk=CUST#<n>`, `sk=PROFILE`, the row's JSON in `doc`).
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ecrm.core.errors import InvalidInput
from ecrm.customers.imports import read_rows, row_to_upsert
from ecrm.customers.logic import MergePolicy
from ecrm.customers.models import CustomerUpsert, ImportRequest
from ecrm_ops.customers.demo_data import SOURCES, DemoDataSet, generate

from tests.bench.harness import Measurement

PEOPLE = int(os.environ.get("ECRM_BENCH_PEOPLE", "1000"))
SEED = 7
POLICY = MergePolicy(source_priority={"*": ("erp", "callcenter", "shop", "web")})
IMPORTED_AT = datetime(2025, 7, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Prepared:
    """A record ready for `CustomerService.upsert`, with the region its file's phones are in."""

    record: CustomerUpsert
    region: str | None


@functools.cache
def dataset() -> DemoDataSet:
    return generate(people=PEOPLE, seed=SEED)


@functools.cache
def prepared() -> tuple[Prepared, ...]:
    """Every good row of the data set as a record, in import order."""
    data = dataset()
    records: list[Prepared] = []
    for source in SOURCES:
        request = ImportRequest.model_validate(data.import_request(source))
        for row in read_rows(data.files[source], request.format):
            try:
                upsert = row_to_upsert(row, request, import_id="imp_bench", imported_at=IMPORTED_AT)
            except InvalidInput:  # a bad row: the importer reports it, the engine never sees it
                continue
            records.append(Prepared(upsert, request.default_phone_region))
    return tuple(records)


def create_table(client: Any, name: str) -> None:
    """A table shaped like the customers table: `pk`/`sk` strings, on demand."""
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
    )
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})


def reference_items(docs: Iterable[str]) -> list[dict[str, str]]:
    """One item per row, as a plain key-value store would keep it."""
    return [{"pk": f"CUST#{n}", "sk": "PROFILE", "doc": doc} for n, doc in enumerate(docs)]


def row_docs(data: DemoDataSet) -> list[str]:
    """Every row of every file (bad ones too: an import reads them all) as JSON."""
    return [
        json.dumps(row, ensure_ascii=False)
        for source in SOURCES
        for row in csv.DictReader(io.StringIO(data.files[source].decode("utf-8")))
    ]


def batch_write(table: Any, items: list[dict[str, str]]) -> None:
    with table.batch_writer() as writer:
        for item in items:
            writer.put_item(Item=item)


def count_items(client: Any, table: str) -> int:
    total, start = 0, None
    while True:
        page = client.scan(TableName=table, Select="COUNT", **({"ExclusiveStartKey": start} if start else {}))
        total += page["Count"]
        start = page.get("LastEvaluatedKey")
        if not start:
            return total


def print_throughput(rows: int, measurements: list[Measurement], reference: Measurement) -> str:
    """Rows per second at each measurement's median, and as a share of the reference's."""
    reference_rate = rows / (reference.median / 1000)
    width = max(len(m.name) for m in [reference, *measurements]) + 2
    lines = [f"  rows/s over {rows} rows (at the median)"]
    for m in [reference, *measurements]:
        rate = rows / (m.median / 1000)
        ratio = "reference" if m is reference else f"x{rate / reference_rate:.3f} of the reference's rate"
        lines.append(f"  {m.name:{width}} {rate:>10,.0f} rows/s   {ratio}")
    text = "\n".join(lines)
    print(text)
    return text
