"""The import pipeline's steps in process (moto S3 and DynamoDB): prepare, chunks, finish."""

from __future__ import annotations

import csv
import io
from typing import Any

import boto3
import pytest
from ecrm.customers import import_jobs
from ecrm.customers.import_jobs import ImportDesk, ImportPipeline
from ecrm.customers.models import CustomerUpsert, IdentityIn, ImportRequest
from ecrm.customers.service import CustomerService

from tests.integration.customers.conftest import RecordingPublisher

BUCKET = "imports"


@pytest.fixture
def s3(dynamodb: Any) -> Any:  # inside the same mock_aws as the table
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    return client


def upload(service: CustomerService, s3: Any, rows: list[str], **request: Any) -> str:
    desk = ImportDesk(service.store, s3, BUCKET, service.clock)
    ticket = desk.open(
        ImportRequest.model_validate({"source": "crm", "mapping": {"mail": "email", "town": "city"}, **request})
    )
    s3.put_object(
        Bucket=BUCKET,
        Key=import_jobs.upload_key(ticket.import_id, "csv"),
        Body=("mail,town\n" + "\n".join(rows) + "\n").encode(),
    )
    return ticket.import_id


def run(pipeline: ImportPipeline, import_id: str) -> dict[str, Any]:
    prepared = pipeline.prepare(import_jobs.upload_key(import_id, "csv"), import_id)
    for chunk in prepared["chunks"]:
        pipeline.chunk(chunk["import_id"], chunk["index"], chunk["key"])
    pipeline.finish(import_id)
    return prepared


def test_chunks_grow_so_the_chunk_list_stays_small(
    service: CustomerService, s3: Any, publisher: RecordingPublisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(import_jobs, "MAX_CHUNKS", 3)
    pipeline = ImportPipeline(service, s3, BUCKET, publisher, chunk_rows=2)
    import_id = upload(service, s3, [f"p{n}@example.com,Town{n}" for n in range(10)])
    prepared = run(pipeline, import_id)
    assert len(prepared["chunks"]) == 3  # 10 rows, at most 3 chunks: 4 + 4 + 2
    status = ImportDesk(service.store, s3, BUCKET, service.clock).status(import_id)
    assert (status.status, status.total_rows, status.processed_rows, status.created_customers) == (
        "completed",
        10,
        10,
        10,
    )


def test_a_retried_chunk_counts_once_and_bad_rows_are_reported(
    service: CustomerService, s3: Any, publisher: RecordingPublisher
) -> None:
    pipeline = ImportPipeline(service, s3, BUCKET, publisher, chunk_rows=100)
    import_id = upload(service, s3, ["ok@example.com,Oslo", "not-an-email,Bergen", ",Nowhere"])
    prepared = pipeline.prepare(import_jobs.upload_key(import_id, "csv"), import_id)
    (chunk,) = prepared["chunks"]
    pipeline.chunk(import_id, chunk["index"], chunk["key"])
    pipeline.chunk(import_id, chunk["index"], chunk["key"])  # Step Functions retried it
    pipeline.finish(import_id)
    status = ImportDesk(service.store, s3, BUCKET, service.clock).status(import_id)
    assert (status.processed_rows, status.imported_rows, status.error_rows) == (3, 1, 2)
    report = s3.get_object(Bucket=BUCKET, Key=status.error_report_key)["Body"].read().decode()
    assert [row["row"] for row in csv.DictReader(io.StringIO(report))] == ["2", "3"]
    (completed,) = publisher.of("ImportCompleted")
    assert completed.error_rows == 2
    # And nothing of the source file is left in the bucket but the report
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert keys == [status.error_report_key]


def test_the_same_file_twice_is_a_duplicate(service: CustomerService, s3: Any, publisher: RecordingPublisher) -> None:
    pipeline = ImportPipeline(service, s3, BUCKET, publisher)
    first = upload(service, s3, ["same@example.com,Rome"])
    run(pipeline, first)
    second = upload(service, s3, ["same@example.com,Rome"])
    prepared = run(pipeline, second)
    assert prepared["duplicate"] is True
    status = ImportDesk(service.store, s3, BUCKET, service.clock).status(second)
    assert (status.status, status.duplicate_of) == ("duplicate", first)


def test_a_merge_caused_by_an_import_is_traceable_to_the_staff_member_who_started_it(
    service: CustomerService, s3: Any, publisher: RecordingPublisher
) -> None:
    # Given two customers the store believes are different people
    first = service.upsert(
        CustomerUpsert(source="erp", identities=[IdentityIn(type="email", value="one@example.com")]), actor="t"
    ).customer_id
    second = service.upsert(
        CustomerUpsert(source="erp", identities=[IdentityIn(type="external_id", namespace="crm", value="42")]),
        actor="t",
    ).customer_id
    # When a staff member imports a file whose row links them
    desk = ImportDesk(service.store, s3, BUCKET, service.clock)
    ticket = desk.open(
        ImportRequest.model_validate({"source": "crm", "mapping": {"mail": "email", "id": "external_id"}}),
        requested_by="staff-subject-1",
    )
    s3.put_object(
        Bucket=BUCKET, Key=import_jobs.upload_key(ticket.import_id, "csv"), Body=b"mail,id\none@example.com,42\n"
    )
    run(ImportPipeline(service, s3, BUCKET, publisher, chunk_rows=10), ticket.import_id)
    # Then the merge names the import, and the import names who started it
    [merge] = service.store.merges(min(first, second))
    assert merge.merged_by == f"import:{ticket.import_id}"
    assert desk.status(ticket.import_id).requested_by == "staff-subject-1"
    assert [e.merged_by for e in publisher.of("CustomersMerged")] == [f"import:{ticket.import_id}"]
