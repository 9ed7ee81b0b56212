"""The demo data set: four sources with their own formats, whose good rows resolve to the known persons."""

from __future__ import annotations

import csv
import io
import json
import re
from collections import defaultdict
from pathlib import Path

import pytest
from ecrm.customers.identity import InvalidIdentity, NormalizedIdentity, normalize_all
from ecrm.customers.models import IdentityIn, ImportRequest
from ecrm_ops.customers.demo_data import COLUMNS, TARGETS, DemoDataSet, generate, write
from pydantic import ValidationError

PEOPLE = 3000
IDENTITY_TARGETS = {"email", "phone", "external_id", "loyalty_card"}


@pytest.fixture(scope="module")
def dataset() -> DemoDataSet:
    return generate(PEOPLE, seed=7)


def _rows(dataset: DemoDataSet, source: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(dataset.files[source].decode("utf-8"))))


def _identities(dataset: DemoDataSet, source: str, row: dict[str, str]) -> list[NormalizedIdentity] | None:
    """What an importer makes of a row: its normalised identities, or None when the row must be reported."""
    raw: list[IdentityIn] = []
    for column, target in dataset.mappings[source].items():
        value = (row.get(column) or "").strip()
        if not value:
            continue
        if target == "country" and not re.fullmatch(r"[A-Za-z]{2}", value):
            return None
        if target in IDENTITY_TARGETS:
            try:
                raw.append(IdentityIn(type=target, value=value, namespace=source if target == "external_id" else ""))
            except ValidationError:
                return None
    if not raw:
        return None
    try:
        return normalize_all(raw, default_region=dataset.default_regions[source])
    except InvalidIdentity:
        return None


def _good_rows(dataset: DemoDataSet) -> list[tuple[str, int, list[NormalizedIdentity]]]:
    """(source, person, identities) of every good row, in import order."""
    good = []
    for source in dataset.files:
        for owner, row in zip(dataset.row_owners[source], _rows(dataset, source), strict=True):
            identities = _identities(dataset, source, row)
            if identities is not None:
                good.append((source, owner, identities))
    return good


class _Clusters:
    """Union-find over identity keys: how identity resolution groups the good rows."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, key: str) -> str:
        self.parent.setdefault(key, key)
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def union(self, keys: list[str]) -> int:
        """Join the keys; how many existing clusters this merged beyond the first."""
        roots = {self.find(key) for key in keys if key in self.parent}
        for key in keys:
            self.parent.setdefault(key, key)
        first = self.find(keys[0])
        for key in keys[1:]:
            self.parent[self.find(key)] = first
        return max(0, len(roots) - 1)


def _resolve(dataset: DemoDataSet) -> tuple[dict[str, set[int]], int]:
    """Cluster -> persons behind it, and how many merges importing the files in order would need."""
    clusters, merges = _Clusters(), 0
    good = _good_rows(dataset)
    for _, _, identities in good:
        merges += clusters.union([identity.key for identity in identities])
    owners: dict[str, set[int]] = defaultdict(set)
    for _, owner, identities in good:
        owners[clusters.find(identities[0].key)].add(owner)
    return owners, merges


def test_the_same_seed_gives_the_same_data_and_another_seed_other_data():
    # Given / When
    first, again, other = generate(200, seed=11), generate(200, seed=11), generate(200, seed=12)

    # Then
    assert first.files == again.files
    assert first.row_owners == again.row_owners
    assert (first.records, first.bad_rows, first.expected_customers) == (
        again.records,
        again.bad_rows,
        again.expected_customers,
    )
    assert first.files != other.files


def test_four_sources_each_with_its_own_columns_and_a_valid_mapping(dataset: DemoDataSet) -> None:
    # Then
    assert list(dataset.files) == ["web", "callcenter", "shop", "erp"]
    assert set(dataset.mappings) == set(dataset.default_regions) == set(dataset.files)
    for source, content in dataset.files.items():
        header = next(csv.reader(io.StringIO(content.decode("utf-8"))))
        assert tuple(header) == COLUMNS[source]
        mapping = dataset.mappings[source]
        assert set(mapping) <= set(header), source
        assert set(mapping.values()) <= TARGETS, source
        assert set(mapping.values()) & IDENTITY_TARGETS, source
        assert ImportRequest.model_validate(dataset.import_request(source)).source == source
    assert dataset.default_regions == {"web": None, "callcenter": "US", "shop": "DE", "erp": None}
    assert set(TARGETS) == {
        "email",
        "phone",
        "external_id",
        "loyalty_card",
        "consent.email.marketing",
        "consent.sms.marketing",
        "preference.language",
        "first_name",
        "last_name",
        "street",
        "postal_code",
        "city",
        "country",
        "birth_date",
    }


def test_the_counts_match_the_files_and_the_bad_rows_are_the_ones_an_importer_must_report(dataset: DemoDataSet) -> None:
    # When
    rows = {source: _rows(dataset, source) for source in dataset.files}
    bad = {source: [row for row in rows[source] if _identities(dataset, source, row) is None] for source in rows}

    # Then
    assert dataset.records == sum(len(source_rows) for source_rows in rows.values())
    assert dataset.bad_rows == sum(len(source_bad) for source_bad in bad.values())
    for source, source_rows in rows.items():
        assert len(dataset.row_owners[source]) == len(source_rows)
        assert 0.01 * len(source_rows) <= len(bad[source]) <= 0.04 * len(source_rows), source
    # ... and every kind of mistake is there
    countries = [row["Country"] for row in bad["web"]] + [row["COUNTRY"] for row in bad["erp"]]
    assert {"Germany", "France", "United Kingdom", "USA"} & set(countries)
    emails = [row["Email"] for row in bad["web"]] + [row["customer_email"] for row in bad["shop"]]
    assert any(email.endswith("@") for email in emails)
    assert any(row["caller_phone"] in {"12345", "0000", "+49 123", "call back"} for row in bad["callcenter"])
    identity_columns = ("customer_email", "phone", "shop_customer_id")
    assert any(not any(row[column] for column in identity_columns) for row in bad["shop"])


def test_every_good_row_resolves_to_exactly_its_person(dataset: DemoDataSet) -> None:
    # When
    owners, merges = _resolve(dataset)

    # Then: no cluster holds two persons, no person is split over two clusters
    assert all(len(persons) == 1 for persons in owners.values())
    assert len(owners) == dataset.expected_customers
    assert PEOPLE * 0.9 < dataset.expected_customers <= PEOPLE
    # ... and importing the files in order creates customers that later records merge
    assert merges > PEOPLE * 0.02


def test_some_persons_are_linked_only_transitively(dataset: DemoDataSet) -> None:
    # Given: each person's identities, by source
    known: dict[int, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for source, owner, identities in _good_rows(dataset):
        known[owner][source] |= {identity.key for identity in identities}

    # When: two of a person's sources share no identity at all
    linked = [
        owner
        for owner, by_source in known.items()
        if any(not by_source[a] & by_source[b] for a in by_source for b in by_source if a < b)
    ]

    # Then
    assert len(linked) == dataset.linked_persons
    assert len(linked) > PEOPLE * 0.05
    assert all(1 <= len(by_source) <= 4 for by_source in known.values())
    assert any(len(by_source) == 4 for by_source in known.values())


def test_the_sources_write_identities_in_their_own_formats(dataset: DemoDataSet) -> None:
    # Given
    web = [row["Email"] for row in _rows(dataset, "web")]
    shop = [row["phone"] for row in _rows(dataset, "shop") if row["phone"]]
    calls = [row["caller_phone"] for row in _rows(dataset, "callcenter") if row["caller_phone"]]
    erp = [row["PHONE"] for row in _rows(dataset, "erp") if row["PHONE"] and _identities(dataset, "erp", row)]

    # Then: web addresses as people type them, normalised to the same mailbox
    assert any(email != email.strip() for email in web)
    assert any(email.strip() != email.strip().lower() for email in web)
    assert any("+" in email.split("@")[0] and email.endswith("@gmail.com") for email in web)
    assert any(email.endswith("@googlemail.com") for email in web)
    # ... national German numbers in the shop, US formats in the call centre, E.164 in the ERP
    assert any(re.fullmatch(r"0\d{4} \d{7}", phone) for phone in shop)
    assert any(re.fullmatch(r"0\d{4}/\d{7}", phone) for phone in shop)
    assert any(phone.startswith("+") for phone in shop)
    assert any(re.fullmatch(r"\(\d{3}\) \d{3}-\d{4}", phone) for phone in calls)
    assert any(re.fullmatch(r"\d{3}-\d{3}-\d{4}", phone) for phone in calls)
    assert any(re.fullmatch(r"\+\d{11,13}", phone) for phone in calls)
    assert any("-" in phone and phone.startswith("+") for phone in calls)
    assert erp
    assert all(re.fullmatch(r"\+\d{10,14}", phone) for phone in erp)


def test_shop_guest_orders_have_a_phone_but_no_email(dataset: DemoDataSet) -> None:
    # When
    guests = [row for row in _rows(dataset, "shop") if row["phone"] and not row["customer_email"]]

    # Then
    assert guests
    assert sum(_identities(dataset, "shop", row) is not None for row in guests) > len(guests) * 0.9


@pytest.mark.parametrize("people", [1, 2, 7, 40])
def test_small_data_sets_still_resolve_to_their_persons(people: int) -> None:
    # When
    small = generate(people, seed=people)
    owners, _ = _resolve(small)

    # Then
    assert all(len(persons) == 1 for persons in owners.values())
    assert len(owners) == small.expected_customers <= people
    assert small.bad_rows == sum(
        _identities(small, source, row) is None for source in small.files for row in _rows(small, source)
    )


def test_people_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        generate(0)


def test_write_puts_each_csv_next_to_its_import_request(tmp_path: Path) -> None:
    # Given
    small = generate(50, seed=3)

    # When
    paths = write(small, tmp_path / "demo")

    # Then
    assert set(paths) == set(small.files)
    for source, path in paths.items():
        assert path.name == f"{source}.csv"
        assert path.read_bytes() == small.files[source]
        request = ImportRequest.model_validate(json.loads(path.with_suffix(".mapping.json").read_text()))
        assert request.source == source
        assert request.format == "csv"
        assert request.mapping == small.mappings[source]
        assert request.default_phone_region == small.default_regions[source]
