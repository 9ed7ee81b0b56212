"""The customer store on the local cloud: imports through the real upload path, erasure that leaves no PII."""

from __future__ import annotations

import csv
import io
import json
import urllib.request
import zlib
from pathlib import Path
from typing import Any

import pytest
from ecrm.core.packing import unpack
from ecrm_ops.customers.importer import ImportFailed, run_import
from ecrm_ops.tour.context import TourContext, wait_for

CSV = """Email,Mobile,First Name,Country,Newsletter
grace@example.com,+33 1 42 68 53 00,Grace,FR,yes
not-an-email,,Bad,FR,no
linus@example.com,030 1234567,Linus,DE,no
,,Nobody,DE,yes
"Hopper, Grace",,Quoted,US,maybe
margaret@example.com,,Margaret,Germany,yes
"""
MAPPING = {
    "Email": "email",
    "Mobile": "phone",
    "First Name": "first_name",
    "Country": "country",
    "Newsletter": "consent.email.marketing",
}


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "people.csv"
    data.write_text(CSV)
    mapping = tmp_path / "people.mapping.json"
    mapping.write_text(json.dumps({"mapping": MAPPING, "default_phone_region": "DE"}))
    return data, mapping


def lookup(tour: TourContext, token: str, email: str) -> Any:
    return tour.call("GET", f"/customers?email={email}", token=token)


def test_an_import_keeps_good_rows_reports_bad_ones_and_is_idempotent(
    tour: TourContext, files: tuple[Path, Path], tmp_path: Path
) -> None:
    admin = tour.token(group="admin")
    data, mapping = files
    # When the file is imported through the API and the presigned upload
    first = run_import(
        str(data), source="crm", mapping_file=str(mapping), api_url=tour.api, token=admin, progress=False
    ).status
    # Then good rows are customers and every bad row is in the report with its number and reason
    assert (first["status"], first["total_rows"], first["error_rows"]) == ("completed", 6, 4)
    assert first["created_customers"] == 2
    assert lookup(tour, admin, "grace@example.com").body["profile"]["first_name"]["value"] == "Grace"
    linus = lookup(tour, admin, "linus@example.com").body
    assert any(i["type"] == "phone" and i["value"] == "+49301234567" for i in linus["identities"])
    with urllib.request.urlopen(first["error_report_url"]) as response:
        report = list(csv.DictReader(io.StringIO(response.read().decode())))
    assert [int(r["row"]) for r in report] == [2, 4, 5, 6]
    assert "email" in report[0]["reason"].lower()
    assert "country" in report[3]["reason"].lower()
    # And the same file again changes nothing
    again = run_import(
        str(data), source="crm", mapping_file=str(mapping), api_url=tour.api, token=admin, progress=False
    ).status
    assert (again["status"], again["duplicate_of"]) == ("duplicate", first["import_id"])
    # And a copy with other bytes (a trailing blank line) yields only unchanged rows
    copy = tmp_path / "people-copy.csv"
    copy.write_text(CSV + "\n")
    third = run_import(
        str(copy), source="crm", mapping_file=str(mapping), api_url=tour.api, token=admin, progress=False
    ).status
    assert (third["imported_rows"], third["unchanged_rows"], third["created_customers"]) == (0, 2, 0)


def test_a_bad_mapping_is_refused_before_any_upload(
    tour: TourContext, files: tuple[Path, Path], tmp_path: Path
) -> None:
    data, _ = files
    mapping = tmp_path / "bad.mapping.json"
    mapping.write_text(json.dumps({"Email": "emial.address", "Country": "consent.fax.marketing"}))
    with pytest.raises(ImportFailed) as refused:
        run_import(
            str(data),
            source="crm",
            mapping_file=str(mapping),
            api_url=tour.api,
            token=tour.token(group="admin"),
            progress=False,
        )
    assert "400" in str(refused.value) or "422" in str(refused.value)
    assert "consent.fax.marketing" in str(refused.value)


def test_an_erased_customer_leaves_nothing_that_identifies_them(tour: TourContext) -> None:
    admin = tour.token(group="admin")
    email, phone, loyalty = "erase.everything@example.com", "+442079460958", "LC-ERASE-1"
    # Given a customer known by three identities, with a timeline, a consent and a merge behind them
    first = tour.call(
        "POST",
        "/customers",
        token=admin,
        body={
            "source": "web",
            "identities": [{"type": "email", "value": email}],
            "attributes": {"first_name": "Quinn", "city": "Leeds"},
        },
    ).body["customer_id"]
    second = tour.call(
        "POST",
        "/customers",
        token=admin,
        body={"source": "callcenter", "identities": [{"type": "phone", "value": phone}]},
    ).body["customer_id"]
    merged = tour.call(
        "POST",
        "/customers",
        token=admin,
        body={
            "source": "erp",
            "identities": [
                {"type": "email", "value": email},
                {"type": "phone", "value": phone},
                {"type": "loyalty_card", "value": loyalty},
            ],
        },
    ).body
    assert merged["merged_ids"] == [second]
    tour.call("PUT", f"/customers/{first}/consents/sms/marketing", token=admin, body={"state": "granted"})
    tour.call(
        "POST",
        f"/customers/{second}/interactions",
        token=admin,
        body={
            "type": "call",
            "occurred_at": "2026-11-01T10:00:00Z",
            "source": "callcenter",
            "properties": {"note": "asked about Quinn's order in Leeds"},
        },
    )
    # When erasure is requested and every engine acknowledges
    request = tour.call("DELETE", f"/customers/{first}", token=admin).body["request_id"]
    wait_for(
        lambda: tour.call("GET", f"/erasures/{request}", token=admin).body["status"] == "completed",
        timeout=30,
        what="the erasure",
    )
    # Then neither id nor any identity resolves, and no item of the table holds any of it
    for cid in (first, second):
        assert tour.call("GET", f"/customers/{cid}", token=admin).status == 404
    assert lookup(tour, admin, email).status == 404
    table = tour.cloud.physical_id("AWS::DynamoDB::Table", "CustomersTable")
    dump = json.dumps(tour.cloud.client("dynamodb").scan(TableName=table)["Items"], default=readable)
    for secret in (email, phone, loyalty, "Quinn", "Leeds"):
        assert secret not in dump, secret


def readable(value: Any) -> str:
    """A binary attribute as the text it holds: the events packed in an item (`ecrm.core.packing`) are searched
    too, for what an erasure must not leave."""
    if isinstance(value, bytes):
        try:
            return unpack(value).decode()
        except (ValueError, zlib.error, UnicodeDecodeError):
            return value.hex()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def test_an_imported_file_does_not_outlive_its_import(tour: TourContext, files: tuple[Path, Path]) -> None:
    data, mapping = files
    status = run_import(
        str(data),
        source="archive",
        mapping_file=str(mapping),
        api_url=tour.api,
        token=tour.token(group="admin"),
        progress=False,
    ).status
    bucket = tour.cloud.physical_id("AWS::S3::Bucket", "CustomersImportBucket")
    keys = [o["Key"] for o in tour.cloud.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert not [k for k in keys if status["import_id"] in k and not k.startswith("reports/")]


def test_a_file_dropped_in_the_bucket_is_imported_with_its_mapping(tour: TourContext) -> None:
    cloud = tour.cloud
    s3 = cloud.client("s3")
    bucket = cloud.physical_id("AWS::S3::Bucket", "CustomersImportBucket")
    # Given a mapping for the ERP's nightly export, and the export dropped in incoming/erp-nightly/
    s3.put_object(
        Bucket=bucket,
        Key="mappings/erp-nightly.json",
        Body=json.dumps(
            {"source": "erp", "format": "jsonl", "mapping": {"ERP_ID": "external_id", "MAIL": "email", "CITY": "city"}}
        ),
    )
    rows = [
        {"ERP_ID": "N-1", "MAIL": "nightly.one@example.com", "CITY": "Turin"},
        {"ERP_ID": "N-2", "MAIL": "broken@", "CITY": "Milan"},
    ]
    s3.put_object(
        Bucket=bucket,
        Key="incoming/erp-nightly/2026-11-23.jsonl",
        Body="\n".join(json.dumps(r) for r in rows).encode(),
        ContentType="application/x-ndjson",
    )
    admin = tour.token(group="admin")
    # Then the customer appears, and the dropped file is gone once imported
    found = wait_for(
        lambda: (r := lookup(tour, admin, "nightly.one@example.com")).status == 200 and r.body,
        timeout=30,
        what="the dropped file's customer",
    )
    assert found["profile"]["city"]["value"] == "Turin"
    wait_for(
        lambda: "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="incoming/erp-nightly/"),
        timeout=30,
        what="the dropped file to be removed after its import",
    )


def test_customer_changes_reach_the_lake_without_personal_values(tour: TourContext) -> None:
    from infra.local.lake import LocalLake

    admin = tour.token(group="admin")
    email = "lake.watcher@example.com"
    created = tour.call(
        "POST",
        "/customers",
        token=admin,
        body={"source": "web", "identities": [{"type": "email", "value": email}], "attributes": {"city": "Graz"}},
    ).body
    tour.call("PATCH", f"/customers/{created['customer_id']}", token=admin, body={"attributes": {"city": "Linz"}})
    lake = LocalLake(tour.cloud.client("s3"), tour.cloud.physical_id("AWS::S3::Bucket", "LakeBucket"))

    def rows() -> list[dict[str, Any]]:
        return lake.query(
            "select change, changed, record_source from {customer_changes} where customer_id = ? order by occurred_at",
            [created["customer_id"]],
        )

    found = wait_for(lambda: len(r := rows()) >= 2 and r, timeout=30, what="the changes in the lake")
    assert [r["change"] for r in found] == ["CustomerCreated", "CustomerUpdated"]
    assert json.loads(found[1]["changed"]) == ["city"]
    dump = json.dumps(found, default=str)
    assert email not in dump
    assert "Linz" not in dump
