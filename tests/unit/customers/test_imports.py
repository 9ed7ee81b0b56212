"""Bulk imports: reading CSV and JSON Lines, mapping rows to records, error reports, chunks."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from ecrm.core.errors import InvalidInput
from ecrm.customers.imports import (
    Chunk,
    ErrorReport,
    RowError,
    SourceRow,
    count_rows,
    merge_reports,
    plan_chunks,
    read_rows,
    row_fingerprint,
    row_to_upsert,
    rows_in_chunk,
    validate_mapping,
)
from ecrm.customers.models import CustomerUpsert, ImportRequest
from hypothesis import given
from hypothesis import strategies as st

IMPORTED_AT = datetime(2026, 11, 23, 10, 15, 30, tzinfo=UTC)
IMPORT_ID = "imp_01JD5Z3Q8W4N2K7R9T6V0X1Y2Z"


def _request(mapping: dict[str, str], **overrides: object) -> ImportRequest:
    return ImportRequest.model_validate({"source": "shop", "mapping": mapping, **overrides})


def _convert(values: dict[str, object], mapping: dict[str, str], **overrides: object) -> CustomerUpsert:
    return row_to_upsert(
        SourceRow(7, dict(values)), _request(mapping, **overrides), import_id=IMPORT_ID, imported_at=IMPORTED_AT
    )


def _row_error(values: dict[str, object], mapping: dict[str, str], **overrides: object) -> str:
    with pytest.raises(RowError) as caught:
        _convert(values, mapping, **overrides)
    assert caught.value.number == 7
    return caught.value.reason


class ChunkedBody:
    """Reads like an S3 object body: a few bytes per `read`, no line iteration."""

    def __init__(self, data: bytes, step: int = 5) -> None:
        self._data, self._step, self._at = data, step, 0

    def read(self, size: int = -1) -> bytes:
        piece = self._data[self._at : self._at + min(size, self._step)]
        self._at += len(piece)
        return piece


# -- the mapping ---------------------------------------------------------------------------------
def test_a_valid_mapping_passes():
    # Given every kind of target, and a column to ignore
    mapping = {
        "Email": "email",
        "Work email": "email",
        "Mobile": "phone",
        "Customer no": "external_id",
        "Card": "loyalty_card",
        "Device": "device_id",
        "Seen": "observed_at",
        "Newsletter": "consent.email.marketing",
        "Topic": "consent.sms.topic:sale",
        "Lang": "preference.language",
        "TZ": "preference.time_zone",
        "Channels": "preference.preferred_channels",
        "First name": "first_name",
        "Notes": "-",
    }

    # When / Then it is accepted
    validate_mapping(mapping)


def test_mapping_errors_name_every_bad_target():
    # Given a mapping with several mistakes
    mapping = {
        "Email": "e-mail",
        "Fax": "consent.fax.marketing",
        "Spam": "consent.email.spam",
        "Quiet": "preference.quiet_hours",
        "Name": "First Name",
        "Blank": "",
        "Given": "first_name",
        "Also given": "first_name",
    }

    # When it is validated
    with pytest.raises(InvalidInput) as caught:
        validate_mapping(mapping)

    # Then one error names each bad column and target, and the missing identity
    detail = caught.value.detail
    for column, target in [
        ("Email", "e-mail"),
        ("Fax", "consent.fax.marketing"),
        ("Spam", "consent.email.spam"),
        ("Quiet", "preference.quiet_hours"),
        ("Name", "First Name"),
        ("Blank", ""),
        ("Also given", "first_name"),
    ]:
        assert f"column {column!r} -> {target!r}" in detail
    assert "'fax' is not a channel" in detail
    assert "'spam' is not a purpose" in detail
    assert "also mapped from column 'Given'" in detail
    assert "no identity" in detail
    assert len(caught.value.extensions["errors"]) == 7


def test_a_mapping_needs_an_identity():
    # Given a mapping of attributes only
    # When / Then it is refused
    with pytest.raises(InvalidInput, match="no identity"):
        validate_mapping({"Name": "first_name", "Email": "-"})


# -- reading CSV ---------------------------------------------------------------------------------
def test_csv_with_bom_quotes_and_a_short_row():
    # Given a CSV saved by a spreadsheet: BOM, CRLF, quoted commas and newlines, one short row
    data = (
        b"\xef\xbb\xbf Email ,Name,Notes\r\n"
        b'ada@example.com,"Lovelace, Ada","line one\r\nline two"\r\n'
        b"short@example.com,Short\r\n"
        b"\r\n"
        b"bob@example.com,Bob,\r\n"
    )

    # When its rows are read
    rows = list(read_rows(data, "csv"))

    # Then the header is cleaned, quoted fields are whole, the short row is an error row, blank lines are not rows
    assert rows[0] == SourceRow(
        1, {"Email": "ada@example.com", "Name": "Lovelace, Ada", "Notes": "line one\r\nline two"}
    )
    assert rows[1].number == 2
    assert rows[1].values is None
    assert rows[1].error == "expected 3 fields, got 2"
    assert rows[1].data == ["short@example.com", "Short"]
    assert rows[2] == SourceRow(3, {"Email": "bob@example.com", "Name": "Bob", "Notes": ""})
    assert count_rows(data, "csv") == 3


def test_csv_delimiter_follows_the_header():
    # Given a semicolon-separated export, as spreadsheets write in many locales
    data = b"Email;Name\nada@example.com;Ada, Countess\n"

    # When / Then its fields are split on semicolons
    assert [row.values for row in read_rows(data, "csv")] == [{"Email": "ada@example.com", "Name": "Ada, Countess"}]


def test_a_csv_row_that_is_not_utf8_does_not_block_the_others():
    # Given a row in Latin-1 between two good rows
    data = b"email,city\na@example.com,Berlin\nb@example.com,K\xf6ln\nc@example.com,Wien\n"

    # When the rows are read
    rows = list(read_rows(data, "csv"))

    # Then only that row is an error
    assert [row.error for row in rows] == [None, "not UTF-8 text: save the file as CSV UTF-8", None]
    assert rows[2].values == {"email": "c@example.com", "city": "Wien"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "needs a header row"),
        (b"\xef\xbb\xbf\r\n\r\n", "needs a header row"),
        (b"email,name,email\n", "'email' appears more than once"),
        (b"email,,name\n", "column 2 of the header has no name"),
        (b"em\xe4il,name\n", "not UTF-8"),
    ],
)
def test_a_csv_without_a_usable_header_fails_the_whole_file(data, message):
    # Given / When / Then
    with pytest.raises(InvalidInput, match=message):
        count_rows(data, "csv")


def test_a_stream_reads_like_bytes():
    # Given a file as an S3 body delivers it, a few bytes at a time
    data = b'\xef\xbb\xbfemail,notes\na@example.com,"two\nlines"\nb@example.com,x\n'

    # When / Then the rows are those of the same bytes
    assert list(read_rows(ChunkedBody(data), "csv")) == list(read_rows(data, "csv"))  # type: ignore[arg-type]
    jsonl = b'{"email": "a@example.com"}\n\n{"email": "b@example.com"}'
    assert list(read_rows(ChunkedBody(jsonl, 3), "jsonl")) == list(read_rows(jsonl, "jsonl"))  # type: ignore[arg-type]


# -- reading JSON Lines ------------------------------------------------------------------------
def test_a_bad_jsonl_line_is_an_error_row_and_the_others_are_fine():
    # Given JSON Lines with a broken line, an array, a NaN and blank lines
    data = (
        b'\xef\xbb\xbf{"email": "a@example.com", "visits": 3}\n'
        b"\n"
        b'{"email": "b@example.com",\n'
        b"   \n"
        b"[1, 2]\n"
        b'{"email": "c@example.com", "score": NaN}\n'
        b'{"email": "d@example.com"}\r\n'
    )

    # When the rows are read
    rows = list(read_rows(data, "jsonl"))

    # Then blank lines are not rows, bad lines are error rows with the line kept, good ones are objects
    assert [row.number for row in rows] == [1, 2, 3, 4, 5]
    assert rows[0].values == {"email": "a@example.com", "visits": 3}
    assert rows[1].error is not None
    assert rows[1].error.startswith("invalid JSON")
    assert rows[1].data == '{"email": "b@example.com",'
    assert rows[2].error == "expected a JSON object, got an array"
    assert rows[3].error == "invalid JSON: NaN is not a JSON number"
    assert rows[4].values == {"email": "d@example.com"}
    assert count_rows(data, "jsonl") == 5


# -- rows to records -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("target", "cell", "expected"),
    [
        ("email", "  Ada.Lovelace@Example.com ", ("email", "Ada.Lovelace@Example.com", "")),
        ("phone", "0151 23456789", ("phone", "+4915123456789", "")),
        ("phone", "+1 202 555 0143", ("phone", "+12025550143", "")),
        ("external_id", "C-1042", ("external_id", "C-1042", "shop")),
        ("external_id", 1042, ("external_id", "1042", "shop")),
        ("loyalty_card", "lc-778899", ("loyalty_card", "lc-778899", "")),
        ("device_id", "dev:abc123", ("device_id", "dev:abc123", "")),
    ],
)
def test_each_identity_column_becomes_an_identity(target, cell, expected):
    # Given a row with one identity column
    # When it is converted (German numbers by default)
    upsert = _convert({"Id": cell, "Other": "ignored"}, {"Id": target}, default_phone_region="DE")

    # Then it carries that identity, phones in E.164 and external ids in the source's namespace
    assert [(i.type, i.value, i.namespace) for i in upsert.identities] == [expected]
    assert upsert.source == "shop"
    assert upsert.attributes == {}


def test_the_same_identity_in_two_columns_is_sent_once():
    # Given two email columns holding the same address
    upsert = _convert(
        {"E1": "ada@example.com", "E2": " ADA@example.com", "E3": ""}, dict.fromkeys(("E1", "E2", "E3"), "email")
    )

    # Then it is one identity
    assert [i.value for i in upsert.identities] == ["ada@example.com"]


@pytest.mark.parametrize(
    ("column", "target", "cell", "reason"),
    [
        ("Mail", "email", "not-an-email", "column 'Mail' (email): 'not-an-email' is not an email address"),
        ("Mobile", "phone", "12345", "column 'Mobile' (phone): '12345' is not a phone number"),
        ("Mobile", "phone", "+49 30 1", "column 'Mobile' (phone): '+49 30 1' is not a valid phone number"),
        ("Mail", "email", ["a@example.com"], "column 'Mail' (email): expected text, got an array"),
    ],
)
def test_an_invalid_identity_is_a_row_error_naming_the_column(column, target, cell, reason):
    # Given a row whose identity is malformed, next to a valid one
    # When it is converted / Then the reason names the column, the field and the value
    assert _row_error({column: cell, "Card": "LC1"}, {column: target, "Card": "loyalty_card"}).startswith(reason)


def test_a_row_without_any_identity_is_a_row_error():
    # Given a row whose identity columns are empty or absent
    reason = _row_error({"Email": "  ", "Name": "Ada"}, {"Email": "email", "Mobile": "phone", "Name": "first_name"})

    # Then the reason says so
    assert reason.startswith("no identity: the row has none of email/phone/")
    assert "'Email', 'Mobile' empty" in reason


def test_an_error_row_stays_an_error():
    # Given a row that could not be read
    row = SourceRow(4, None, "expected 3 fields, got 2", ["a", "b"])

    # When / Then converting it gives its reason
    with pytest.raises(RowError, match="row 4: expected 3 fields, got 2"):
        row_to_upsert(row, _request({"a": "email"}), import_id=IMPORT_ID, imported_at=IMPORTED_AT)


def test_a_naive_import_time_is_taken_as_utc():
    # Given / When an import time without a zone
    upsert = row_to_upsert(
        SourceRow(1, {"Email": "a@example.com", "News": "yes"}),
        _request({"Email": "email", "News": "consent.email.marketing"}),
        import_id=IMPORT_ID,
        imported_at=IMPORTED_AT.replace(tzinfo=None),
    )

    # Then consents are stamped with it in UTC
    assert upsert.consents[0].proof.captured_at == IMPORTED_AT


@pytest.mark.parametrize(
    ("cell", "state"),
    [
        ("yes", "granted"),
        ("Y", "granted"),
        ("TRUE", "granted"),
        ("1", "granted"),
        ("granted", "granted"),
        (True, "granted"),
        (1, "granted"),
        ("no", "denied"),
        ("n", "denied"),
        ("False", "denied"),
        ("0", "denied"),
        (" Denied ", "denied"),
        (False, "denied"),
        ("", None),
        (None, None),
    ],
)
def test_consent_columns_read_yes_and_no(cell, state):
    # Given a consent column
    upsert = _convert({"Email": "a@example.com", "News": cell}, {"Email": "email", "News": "consent.email.marketing"})

    # Then it states the consent, with proof of the import, or says nothing when empty
    if state is None:
        assert upsert.consents == []
        return
    [consent] = upsert.consents
    assert (consent.channel, consent.purpose, consent.state) == ("email", "marketing", state)
    assert consent.proof.source == "shop"
    assert consent.proof.captured_at == IMPORTED_AT
    assert consent.proof.notice_version == f"import:{IMPORT_ID}"


def test_an_unclear_consent_is_a_row_error():
    # Given / When / Then
    reason = _row_error(
        {"Email": "a@example.com", "News": "maybe"}, {"Email": "email", "News": "consent.sms.topic:sale"}
    )
    assert reason.startswith("column 'News' (consent.sms.topic:sale): 'maybe' is not a yes or no")


def test_preference_columns_build_preferences():
    # Given preference columns as people type them
    mapping = {
        "Email": "email",
        "Lang": "preference.language",
        "TZ": "preference.time_zone",
        "Ch": "preference.preferred_channels",
    }

    # When the row is converted
    upsert = _convert(
        {"Email": "a@example.com", "Lang": "PT_BR", "TZ": " Europe/Berlin ", "Ch": "Email; sms,,email"}, mapping
    )

    # Then they are normalised into preferences
    assert upsert.preferences is not None
    assert upsert.preferences.language == "pt-BR"
    assert upsert.preferences.time_zone == "Europe/Berlin"
    assert upsert.preferences.preferred_channels == ["email", "sms"]
    assert _convert({"Email": "a@example.com", "Lang": "", "Ch": ["push"]}, mapping).preferences.model_dump(  # type: ignore[union-attr]
        exclude_none=True
    ) == {"preferred_channels": ["push"]}


@pytest.mark.parametrize(
    ("column", "cell", "reason"),
    [
        ("TZ", "Mars/Olympus", "column 'TZ' (preference.time_zone): 'Mars/Olympus' is not an IANA time zone"),
        ("Lang", "English", "column 'Lang' (preference.language): 'English' is not a language tag"),
        ("Ch", "email, fax", "column 'Ch' (preference.preferred_channels): 'fax' is not a channel"),
    ],
)
def test_an_invalid_preference_is_a_row_error(column, cell, reason):
    mapping = {
        "Email": "email",
        "Lang": "preference.language",
        "TZ": "preference.time_zone",
        "Ch": "preference.preferred_channels",
    }
    assert _row_error({"Email": "a@example.com", column: cell}, mapping).startswith(reason)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("2025-03-01", datetime(2025, 3, 1, tzinfo=UTC)),
        ("2025-03-01T14:30:00", datetime(2025, 3, 1, 14, 30, tzinfo=UTC)),
        ("2025-03-01T14:30:00+02:00", datetime(2025, 3, 1, 12, 30, tzinfo=UTC)),
        ("2025-03-01T14:30:00Z", datetime(2025, 3, 1, 14, 30, tzinfo=UTC)),
        ("", None),
    ],
)
def test_observed_at_is_read_as_iso_8601_in_utc(cell, expected):
    # Given an observation time column and a consent
    mapping = {"Email": "email", "Seen": "observed_at", "News": "consent.email.marketing"}

    # When the row is converted
    upsert = _convert({"Email": "a@example.com", "Seen": cell, "News": "yes"}, mapping)

    # Then it is the record's time, and the consent's capture time (else the import's)
    assert upsert.observed_at == expected
    assert upsert.consents[0].proof.captured_at == (expected or IMPORTED_AT)


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("01/03/2025", "'01/03/2025' is not an ISO 8601 date or date-time"),
        ((IMPORTED_AT + timedelta(days=2)).isoformat(), "is in the future"),
    ],
)
def test_an_unreadable_observed_at_is_a_row_error(cell, reason):
    reason_given = _row_error({"Email": "a@example.com", "Seen": cell}, {"Email": "email", "Seen": "observed_at"})
    assert reason_given.startswith("column 'Seen' (observed_at): ")
    assert reason in reason_given


def test_other_columns_become_attributes():
    # Given attribute columns with padding, an empty cell, JSON numbers and an unmapped column
    mapping = {
        "Email": "email",
        "First": "first_name",
        "City": "city",
        "Visits": "visits",
        "Score": "score",
        "Vip": "vip",
    }
    values = {
        "Email": "a@example.com",
        "First": "  Ada ",
        "City": "",
        "Visits": 12,
        "Score": 4.5,
        "Vip": True,
        "X": "y",
    }

    # When / Then strings are trimmed, empties skipped, numbers and booleans kept, unmapped ignored
    assert _convert(values, mapping).attributes == {"first_name": "Ada", "visits": 12, "score": 4.5, "vip": True}


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("Germany", "column 'Land' (country): country must be an ISO 3166-1 alpha-2 code"),
        ({"code": "DE"}, "column 'Land' (country): expected a single value, got an object"),
    ],
)
def test_an_invalid_attribute_is_a_row_error_naming_the_column(cell, reason):
    mapping = {"Email": "email", "First": "first_name", "Land": "country"}
    assert _row_error({"Email": "a@example.com", "First": "Ada", "Land": cell}, mapping) == reason


# -- fingerprints --------------------------------------------------------------------------------
def _ada(**changes: object) -> CustomerUpsert:
    mapping = {"Email": "email", "First": "first_name", "News": "consent.email.marketing", "Seen": "observed_at"}
    values = {"Email": "ada@example.com", "First": "Ada", "News": "yes", "Seen": "2025-03-01", **changes}
    return _convert(values, mapping)


def test_the_fingerprint_is_stable_across_runs():
    # Given the same row converted by two imports, at different times
    first = _ada()
    second = row_to_upsert(
        SourceRow(99, {"Email": "ada@example.com", "First": "Ada", "News": "yes", "Seen": "2025-03-01"}),
        _request({"Email": "email", "First": "first_name", "News": "consent.email.marketing", "Seen": "observed_at"}),
        import_id="imp_other",
        imported_at=IMPORTED_AT + timedelta(days=30),
    )

    # Then the fingerprints are equal, and fixed: changing them would re-apply every past import once
    assert row_fingerprint(first) == row_fingerprint(second)
    assert row_fingerprint(first) == "b125e390c4ea921ef59ca8b32339ce7a4926db33931d10834a6b6131c3ee8a9d"


def test_the_fingerprint_ignores_how_the_email_was_typed():
    assert row_fingerprint(_ada(Email="  ADA@Example.COM ")) == row_fingerprint(_ada())


@pytest.mark.parametrize(
    "changes",
    [
        {"Email": "lovelace@example.com"},
        {"First": "Augusta"},
        {"News": "no"},
        {"News": ""},
        {"Seen": "2025-03-02"},
    ],
)
def test_the_fingerprint_changes_with_the_content(changes):
    assert row_fingerprint(_ada(**changes)) != row_fingerprint(_ada())


# -- the error report ----------------------------------------------------------------------------
def _parse(report: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(report.decode(), newline="")))


def test_the_error_report_lists_rows_in_order_with_their_data():
    # Given rejected rows, recorded out of order
    report = ErrorReport()
    report.add(5, "column 'Mobile' (phone): '12345' is not a phone number", {"Mobile": "12345", "Name": "Zoë, Jr."})
    report.add_row(SourceRow(2, None, "expected 3 fields, got 2", ["a", "b"]))
    report.add(3, "bad", '=HYPERLINK("http://x")')

    # When it is rendered
    rendered = report.render()

    # Then it is a CSV with one header, rows by number, data as compact JSON, formulas defused
    assert rendered.startswith(b"row,reason,data\r\n")
    assert len(report) == 3
    assert _parse(rendered) == [
        ["row", "reason", "data"],
        ["2", "expected 3 fields, got 2", '["a","b"]'],
        ["3", "bad", '"=HYPERLINK(\\"http://x\\")"'],
        ["5", "column 'Mobile' (phone): '12345' is not a phone number", '{"Mobile":"12345","Name":"Zoë, Jr."}'],
    ]
    assert json.loads(_parse(rendered)[3][2]) == {"Mobile": "12345", "Name": "Zoë, Jr."}


def test_chunk_reports_merge_into_one_sorted_report():
    # Given the reports of three chunks, finished out of order, one of them empty
    later, earlier, empty = ErrorReport(), ErrorReport(), ErrorReport()
    later.add(12, "no identity", {"a": "multi\nline"})
    later.add(11, "bad", {})
    earlier.add(3, "bad", {"a": "-1"})

    # When they are merged
    merged = merge_reports([later.render(), empty.render(), b"", earlier.render()])

    # Then there is one header and the rows are in file order
    assert [line[0] for line in _parse(merged)] == ["row", "3", "11", "12"]
    assert _parse(merged)[3][2] == '{"a":"multi\\nline"}'
    assert merge_reports([merged]) == merged


def test_merging_refuses_what_is_not_a_report():
    with pytest.raises(InvalidInput):
        merge_reports([b"email,name\r\na,b\r\n"])


# -- chunks --------------------------------------------------------------------------------------
@given(st.integers(0, 5000), st.integers(1, 700))
def test_chunks_cover_every_row_exactly_once(total, size):
    # Given / When
    chunks = plan_chunks(total, size)

    # Then the ranges are consecutive, none too large, and together are rows 1..total
    assert [chunk.index for chunk in chunks] == list(range(len(chunks)))
    covered = [number for chunk in chunks for number in range(chunk.first_row, chunk.last_row + 1)]
    assert covered == list(range(1, total + 1))
    assert all(1 <= chunk.size <= size for chunk in chunks)


@given(st.lists(st.sampled_from(["ok", "short", "blank"]), max_size=40), st.integers(1, 9))
def test_reading_chunk_by_chunk_yields_every_row_once(kinds, size):
    # Given a CSV with good, short and blank lines
    lines = {"ok": "a@example.com,x\n", "short": "a@example.com\n", "blank": "\n"}
    data = ("email,name\n" + "".join(lines[kind] for kind in kinds)).encode()

    # When each planned chunk reads the file from the top
    chunks = plan_chunks(count_rows(data, "csv"), size)
    per_chunk = [row for chunk in chunks for row in rows_in_chunk(read_rows(data, "csv"), chunk)]

    # Then together they read every row once, in order
    assert per_chunk == list(read_rows(data, "csv"))
    assert len(per_chunk) == sum(kind != "blank" for kind in kinds)


def test_a_chunk_stops_reading_after_its_last_row():
    # Given an endless supply of rows
    def endless():
        number = 0
        while True:
            number += 1
            yield SourceRow(number, {"n": number})

    # When / Then a chunk takes its own and stops
    assert [row.number for row in rows_in_chunk(endless(), Chunk(1, 4, 6))] == [4, 5, 6]


@pytest.mark.parametrize(("total", "size"), [(-1, 10), (10, 0)])
def test_impossible_chunk_plans_are_refused(total, size):
    with pytest.raises(ValueError):
        plan_chunks(total, size)
