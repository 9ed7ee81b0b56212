"""Import rows per second end to end, on the local cloud.

Workload: the demo data set (`tests/bench/customers_workload.py`, ECRM_BENCH_PEOPLE people,
default 1000: about 2200 rows in four CSV files, 2% of them bad on purpose), written with
`demo_data.write` and imported file after file the way a user does it, with `ecrm import`
(`run_import`): POST /imports, PUT the file to the presigned URL, follow GET /imports/{id} until
it completes. On the local cloud that is the API front, the import Lambdas as local workers,
Step Functions (moto, really executing the state machine, chunks of 100 rows in parallel) and
the customers table in moto's DynamoDB server; the clock runs from the first POST to the last
completed status (which is polled every 0.5 s, so each file's figure includes up to that much).
Worker processes start on first use, as Lambda sandboxes do, so the first file also pays the
import functions' cold starts; each file's own rate is printed too.

Reference, against the SAME moto server over HTTP: boto3's `batch_writer` putting one item per
row (the row's JSON under `CUST#<n>`/`PROFILE`) into a throwaway table, the floor of "just
store the rows" on this storage. Both are single-shot (the import is the long one and cannot
be repeated on the same cloud without its duplicate-file detection answering instead).

Start-up (CDK synth, provisioning) is not timed. Nothing here asserts on time; the customer
count is checked because a benchmark of a wrong resolution would measure the wrong work.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from ecrm_ops.customers.demo_data import write
from ecrm_ops.customers.importer import ImportOutcome, run_import
from ecrm_ops.local_cloud import issue_token

from infra.local.cloud import LocalCloud
from tests.bench.customers_workload import (
    PEOPLE,
    batch_write,
    count_items,
    create_table,
    dataset,
    print_throughput,
    reference_items,
    row_docs,
)
from tests.bench.harness import measure, report

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")  # read by the CDK synth in start()


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    local = LocalCloud(state_dir=tmp_path_factory.mktemp("bench-local-cloud"))
    try:
        local.start()
        yield local
    finally:
        local.stop()


def test_import_rows_per_second_end_to_end(cloud: LocalCloud, tmp_path: Path) -> None:
    data = dataset()
    files = write(data, tmp_path / "dataset")
    token = issue_token(group="admin", state=cloud.state)
    outcomes: dict[str, ImportOutcome] = {}

    def import_all() -> None:
        for source, path in files.items():
            outcomes[source] = run_import(
                str(path),
                source=source,
                mapping_file=str(path.with_suffix(".mapping.json")),
                api_url=cloud.state.api_url,
                token=token,
                progress=False,
            )

    items = reference_items(row_docs(data))
    dynamodb = cloud.client("dynamodb")
    resource = boto3.resource(
        "dynamodb",
        endpoint_url=cloud.endpoint_url,
        region_name=cloud.state.region,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    reference_table = f"bench-reference-{uuid.uuid4().hex[:8]}"
    reference_written: dict[str, Any] = {}

    def reference() -> float:
        create_table(dynamodb, reference_table)
        started = time.perf_counter()
        batch_write(resource.Table(reference_table), items)
        elapsed = (time.perf_counter() - started) * 1000
        reference_written["items"] = count_items(dynamodb, reference_table)
        dynamodb.delete_table(TableName=reference_table)
        return elapsed

    baseline = measure("batch_writer put, same moto server (reference)", reference, repeat=1)
    imported = measure("ecrm import, 4 files end to end", import_all, repeat=1)

    report(
        f"Customers: import end to end on the local cloud ({data.records} rows of {PEOPLE} people, "
        f"{os.cpu_count()} CPUs; ms, single shot)",
        [imported],
        baseline,
    )
    print_throughput(data.records, [imported], baseline)
    statuses = {source: outcome.status for source, outcome in outcomes.items()}
    for source, outcome in outcomes.items():
        s = outcome.status
        print(
            f"  {source:<10} {s['total_rows']:>5} rows in {outcome.seconds:5.1f}s "
            f"({s['total_rows'] / outcome.seconds:4.0f} rows/s): imported {s['imported_rows']}, "
            f"unchanged {s['unchanged_rows']}, errors {s['error_rows']}, created {s['created_customers']}, "
            f"merged {s['merged_customers']}"
        )
    created = sum(s["created_customers"] for s in statuses.values())
    merged = sum(s["merged_customers"] for s in statuses.values())
    errors = sum(s["error_rows"] for s in statuses.values())
    print(
        f"  customers resolved {created - merged} ({merged} merges), data set persons {data.expected_customers}; "
        f"bad rows reported {errors} of {data.bad_rows}; cloud errors {len(cloud.errors)}"
    )
    assert reference_written["items"] == len(items) == data.records
    assert all(s["status"] == "completed" for s in statuses.values())
    assert sum(s["total_rows"] for s in statuses.values()) == data.records
    assert created - merged == data.expected_customers
