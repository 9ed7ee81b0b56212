"""`ecrm import pinpoint`: a Pinpoint endpoint export and its templates, mapped without a network."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from ecrm.customers.imports import read_rows, row_to_upsert, validate_mapping
from ecrm.customers.models import CustomerUpsert, ImportRequest
from ecrm.personalization.content import compile_template
from ecrm.personalization.content_models import parse_template
from ecrm_ops.cli import main
from ecrm_ops.pinpoint.endpoints import PUSH_NOTE, ImportRows, map_export, read_export
from ecrm_ops.pinpoint.templates import read_templates, translate_templates

import infra.local.state

SAMPLES = Path(__file__).resolve().parents[3] / "events" / "samples" / "pinpoint"
EXPORT = SAMPLES / "endpoints.jsonl"
IMPORTED_AT = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def records(rows: ImportRows) -> dict[str, CustomerUpsert]:
    """The records the customer store's import makes of the rows, by Pinpoint user id (else the phone number)."""
    validate_mapping(rows.mapping)
    request = ImportRequest(source="pinpoint", format="jsonl", mapping=rows.mapping)
    upserts = [
        row_to_upsert(row, request, import_id="imp_1", imported_at=IMPORTED_AT)
        for row in read_rows(rows.jsonl().encode(), "jsonl")
    ]
    return {next((i.value for i in u.identities if i.type == "external_id"), u.identities[0].value): u for u in upserts}


def identities(record: CustomerUpsert) -> set[tuple[str, str]]:
    return {(i.type, i.value) for i in record.identities}


def consents(record: CustomerUpsert) -> dict[str, str]:
    return {f"{c.channel}.{c.purpose}": c.state for c in record.consents}


def test_the_sample_export_maps_each_user_to_one_customer_record() -> None:
    # Given the sample export: two endpoints for one user, an opted-out user with a push endpoint, a user with
    # three emails (one inactive) and an opted-out voice number, a push-only user, an anonymous SMS endpoint
    rows = map_export(read_export(EXPORT))

    # When the customer store's import reads the rows with the mapping
    by_id = records(rows)

    # Then one record per person, with identities, consents, preferences and attributes
    assert len(by_id) == 6 == rows.report.people
    ada = by_id["user-1001"]
    assert identities(ada) == {
        ("external_id", "user-1001"),
        ("email", "ada@example.com"),
        ("phone", "+4915112345678"),
    }
    assert consents(ada) == {"email.marketing": "granted", "sms.marketing": "granted"}
    assert all(c.proof.source == "pinpoint" for c in ada.consents)
    assert ada.preferences is not None
    assert (ada.preferences.time_zone, ada.preferences.language) == ("Europe/Berlin", "de-DE")
    assert ada.attributes == {
        "first_name": "Ada",
        "last_name": "Moreau",
        "tier": "gold",
        "interests": "Technology, Music",
        "country": "DE",
        "city": "Berlin",
        "postal_code": "10115",
    }
    assert ada.observed_at == datetime(2026, 9, 14, 8, 13, 2, 500000, tzinfo=UTC)
    assert consents(by_id["user-1002"]) == {"email.marketing": "denied"}
    chloe = by_id["user-1003"]
    assert identities(chloe) == {
        ("external_id", "user-1003"),
        ("email", "chloe@work.example.com"),
        ("email", "chloe@home.example.com"),
        ("phone", "+33612345678"),
    }
    assert consents(chloe) == {"email.marketing": "granted", "phone.marketing": "denied"}
    assert identities(by_id["user-1004"]) == {("external_id", "user-1004")}
    assert identities(by_id["+447911123456"]) == {("phone", "+447911123456")}


def test_the_report_says_what_was_not_mapped_with_examples() -> None:
    report = map_export(read_export(EXPORT)).report
    assert report.not_mapped[PUSH_NOTE] == 2
    assert report.examples[PUSH_NOTE] == ["ep-bob-iphone (APNS)", "ep-dan-android (GCM)"]
    assert report.not_mapped["inactive endpoints (an address Pinpoint had retired)"] == 1
    assert report.not_mapped["CUSTOM endpoints"] == 1
    assert report.mapped["EMAIL endpoints"] == 4
    assert any("push tokens are not mapped" in line for line in report.lines_of_text())


def test_a_malformed_line_is_reported_with_its_number_and_the_rest_is_mapped(tmp_path: Path) -> None:
    lines = EXPORT.read_text(encoding="utf-8").splitlines()
    broken = tmp_path / "export.gz"
    with gzip.open(broken, "wt", encoding="utf-8") as out:
        out.write("\n".join([lines[0], '{"ChannelType": "EMAIL", "Address": ', "[1, 2]", lines[1]]) + "\n")

    rows = map_export(read_export(broken))

    assert rows.report.examples["lines that are not an endpoint"] == ["export.gz line 2", "export.gz line 3"]
    assert identities(records(rows)["user-1001"]) == {
        ("external_id", "user-1001"),
        ("email", "ada@example.com"),
        ("phone", "+4915112345678"),
    }


def test_email_and_sms_templates_translate_into_templates_personalization_accepts() -> None:
    translated = translate_templates(read_templates([SAMPLES / "templates"]), locale="en")

    names = [body["name"] for body in translated.bodies]
    assert names == ["order_ready_sms", "welcome_email"]
    welcome = translated.bodies[1]["variants"]["en"]
    assert welcome["subject"] == 'Welcome {{ customer.first_name|default("there") }}'
    assert "{{ customer.tier }}" in welcome["html"]
    assert "{{ customer.email }} from {{ customer.city }}" in welcome["html"]
    sms = translated.bodies[0]["variants"]["en"]["body"]
    assert sms == "Hi {{ customer.first_name }}, your order is ready for pickup in {{ customer.city }}."
    for body in translated.bodies:
        compile_template(parse_template(body))  # raises TemplateRejected if personalization would refuse it
    assert translated.not_translated == {
        "points_email": "placeholders without a customer field: {{#if Attributes.Points}}, {{Attributes.Points}}, "
        "{{/if}}, {{Attributes.ShoeSize}}"
    }


@pytest.fixture
def no_local_cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(infra.local.state, "STATE_FILE", tmp_path / "no-cloud" / "state.json")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["import", "pinpoint", *args], prog_name="ecrm")
    return result.exit_code, result.stdout, result.stderr


def test_a_dry_run_reports_and_changes_nothing(no_local_cloud: None) -> None:
    code, out, _ = run(str(EXPORT), "--templates", str(SAMPLES / "templates"), "--dry-run")
    assert code == 0
    assert "6 customer record(s)" in out
    assert "template points_email not translated" in out
    assert out.rstrip().endswith("dry run: nothing was imported")


def test_without_a_local_cloud_the_import_refuses_in_one_line(no_local_cloud: None) -> None:
    code, _, err = run(str(EXPORT))
    assert code == 1
    assert [line for line in err.splitlines() if line.startswith("Error:")] == [
        "Error: no local cloud is running here: start one with `ecrm local up`, or give --api-url and --token"
    ]


def test_a_file_that_is_not_an_export_is_a_clear_error(tmp_path: Path, no_local_cloud: None) -> None:
    binary = tmp_path / "export.gz"
    binary.write_bytes(b"\x00\x01 not gzip")
    code, _, err = run(str(binary), "--dry-run")
    assert code == 1
    assert "export.gz: not a Pinpoint export" in err
    not_json = tmp_path / "template.json"
    not_json.write_text(json.dumps({"Name": "x"}))
    code, _, err = run(str(EXPORT), "--templates", str(not_json), "--dry-run")
    assert code == 1
    assert "template.json: not a Pinpoint template" in err
