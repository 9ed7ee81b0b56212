"""A chunk whose worker died mid-way resumes after its last applied row, with exact counts (moto in process).

The worker is "killed" by a client that lets the Nth write commit and then raises an exception no
code of ours catches, as a process exit leaves the table: every write before it committed, nothing
after it happened.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import boto3
import pytest
from ecrm.customers import import_jobs
from ecrm.customers.import_jobs import ImportDesk, ImportPipeline
from ecrm.customers.models import CustomerUpsert, IdentityIn, ImportRequest, ImportStatus
from ecrm.customers.service import CustomerService
from ecrm.customers.store import CustomerStore

from tests.integration.customers.conftest import TABLE, RecordingPublisher

BUCKET = "imports"
WRITES = frozenset({"put_item", "transact_write_items", "update_item"})


class WorkerKilled(BaseException):
    """Not an Exception: nothing in the pipeline catches it, as nothing survives a process exit."""


class DyingClient:
    """The DynamoDB client, dying right after its `die_after`-th write committed."""

    def __init__(self, client: Any, die_after: int) -> None:
        self._client, self.die_after, self.writes = client, die_after, 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if name not in WRITES:
            return method

        def write(**kwargs: Any) -> Any:
            answer = method(**kwargs)
            self.writes += 1
            if self.writes == self.die_after:
                raise WorkerKilled(f"killed after write {self.writes}")
            return answer

        return write


@pytest.fixture
def s3(dynamodb: Any) -> Any:
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    return client


def dying(service: CustomerService, die_after: int) -> CustomerService:
    store = CustomerStore(DyingClient(service.store.client, die_after), TABLE)
    return CustomerService(store, service.publisher, service.clock, service.policy, default_region="DE")


ROWS = [
    "old1@example.com,Oslo",  # exists already, unchanged
    "new1@example.com,Bergen",
    "not-an-email,Nowhere",  # bad
    "new2@example.com,Rome",
    "old2@example.com,Paris",  # exists, the town changes
    ",Empty",  # bad
    "new3@example.com,Lima",
    "new1@example.com,Bergen",  # the same person again: unchanged
    "new4@example.com,Quito",
]


def prepare(service: CustomerService, s3: Any) -> tuple[str, dict[str, Any]]:
    for email, city in [("old1@example.com", "Oslo"), ("old2@example.com", "Madrid")]:
        service.upsert(
            CustomerUpsert(source="crm", identities=[IdentityIn(type="email", value=email)], attributes={"city": city})
        )
    desk = ImportDesk(service.store, s3, BUCKET, service.clock)
    ticket = desk.open(ImportRequest.model_validate({"source": "crm", "mapping": {"mail": "email", "town": "city"}}))
    body = ("mail,town\n" + "\n".join(ROWS) + "\n").encode()
    s3.put_object(Bucket=BUCKET, Key=import_jobs.upload_key(ticket.import_id, "csv"), Body=body)
    prepared = ImportPipeline(service, s3, BUCKET, service.publisher).prepare(
        import_jobs.upload_key(ticket.import_id, "csv"), ticket.import_id
    )
    (chunk,) = prepared["chunks"]
    return ticket.import_id, chunk


def finished(service: CustomerService, s3: Any, import_id: str) -> tuple[ImportStatus, list[str]]:
    ImportPipeline(service, s3, BUCKET, service.publisher).finish(import_id)
    status = ImportDesk(service.store, s3, BUCKET, service.clock).status(import_id)
    assert status.error_report_key is not None
    report = s3.get_object(Bucket=BUCKET, Key=status.error_report_key)["Body"].read().decode()
    return status, [row["row"] for row in csv.DictReader(io.StringIO(report))]


EXPECTED = {
    "processed_rows": 9,
    "imported_rows": 5,  # new1..new4 created, old2 changed
    "unchanged_rows": 2,
    "error_rows": 2,
    "created_customers": 4,
    "merged_customers": 0,
}


def counts(status: ImportStatus) -> dict[str, int]:
    return {name: getattr(status, name) for name in EXPECTED}


@pytest.mark.parametrize("die_after", range(1, 9))
def test_a_chunk_killed_after_any_write_resumes_with_exact_counts(
    service: CustomerService, s3: Any, publisher: RecordingPublisher, die_after: int
) -> None:
    # Given an import of new, known and bad rows
    import_id, chunk = prepare(service, s3)
    # When the chunk's worker dies right after its Nth write, and Step Functions runs the chunk again
    with pytest.raises(WorkerKilled):
        ImportPipeline(dying(service, die_after), s3, BUCKET, publisher).chunk(import_id, chunk["index"], chunk["key"])
    ImportPipeline(service, s3, BUCKET, publisher).chunk(import_id, chunk["index"], chunk["key"])
    status, bad_rows = finished(service, s3, import_id)
    # Then the report is the one an uninterrupted import gives: nothing counted twice, no bad row lost
    assert counts(status) == EXPECTED
    assert bad_rows == ["3", "6"]  # data rows, the header not counted
    # And every new person exists once
    owners = service.store.owners_of([f"email:new{n}@example.com" for n in range(1, 5)])
    assert len(set(owners.values())) == 4


def test_an_uninterrupted_chunk_gives_the_same_report(service: CustomerService, s3: Any) -> None:
    import_id, chunk = prepare(service, s3)
    ImportPipeline(service, s3, BUCKET, service.publisher).chunk(import_id, chunk["index"], chunk["key"])
    status, bad_rows = finished(service, s3, import_id)
    assert (counts(status), bad_rows) == (EXPECTED, ["3", "6"])


def test_a_merge_committed_before_the_worker_died_is_counted_once(service: CustomerService, s3: Any) -> None:
    # Given two customers that one imported row links
    for identity in [
        IdentityIn(type="email", value="one@example.com"),
        IdentityIn(type="phone", value="+4915112345678"),
    ]:
        service.upsert(CustomerUpsert(source="erp", identities=[identity]))
    desk = ImportDesk(service.store, s3, BUCKET, service.clock)
    ticket = desk.open(
        ImportRequest.model_validate({"source": "crm", "mapping": {"mail": "email", "tel": "phone", "town": "city"}})
    )
    s3.put_object(
        Bucket=BUCKET,
        Key=import_jobs.upload_key(ticket.import_id, "csv"),
        Body=b"mail,tel,town\none@example.com,+4915112345678,Oslo\n",
    )
    pipeline = ImportPipeline(service, s3, BUCKET, service.publisher)
    (chunk,) = pipeline.prepare(import_jobs.upload_key(ticket.import_id, "csv"), ticket.import_id)["chunks"]
    # When the worker dies right after the merge, before the row's last write
    with pytest.raises(WorkerKilled):
        ImportPipeline(dying(service, 1), s3, BUCKET, service.publisher).chunk(
            ticket.import_id, chunk["index"], chunk["key"]
        )
    pipeline.chunk(ticket.import_id, chunk["index"], chunk["key"])
    pipeline.finish(ticket.import_id)
    # Then the merge is counted once and the row as imported
    status = desk.status(ticket.import_id)
    assert (status.merged_customers, status.imported_rows, status.unchanged_rows) == (1, 1, 0)


def test_bad_rows_past_the_progress_limit_move_to_report_parts(
    service: CustomerService, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(import_jobs, "SPILL_BYTES", 100)
    import_id, chunk = prepare(service, s3)
    with pytest.raises(WorkerKilled):
        ImportPipeline(dying(service, 7), s3, BUCKET, service.publisher).chunk(import_id, chunk["index"], chunk["key"])
    ImportPipeline(service, s3, BUCKET, service.publisher).chunk(import_id, chunk["index"], chunk["key"])
    status, bad_rows = finished(service, s3, import_id)
    assert (counts(status), bad_rows) == (EXPECTED, ["3", "6"])
