"""Identity normalisation: the same person's identifiers, however a source spells them, meet on one key."""

from __future__ import annotations

import operator
import string

import pytest
from ecrm.core.errors import InvalidInput
from ecrm.customers.identity import (
    InvalidIdentity,
    NormalizedIdentity,
    normalize_all,
    normalize_email,
    normalize_identity,
    normalize_phone,
)
from ecrm.customers.models import IdentityIn
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

FAST = settings(max_examples=80, deadline=None)


def _identity(type_: str, value: str, namespace: str = "") -> IdentityIn:
    return IdentityIn.model_validate({"type": type_, "value": value, "namespace": namespace})


def _rejected_email(raw: str) -> InvalidIdentity:
    with pytest.raises(InvalidIdentity) as caught:
        normalize_email(raw)
    return caught.value


def _rejected_phone(raw: str, region: str | None) -> InvalidIdentity:
    with pytest.raises(InvalidIdentity) as caught:
        normalize_phone(raw, region)
    return caught.value


# -- email -----------------------------------------------------------------------------------------
def test_email_is_trimmed_and_lower_cased() -> None:
    # Given an address typed with surrounding blanks and mixed case
    raw = "  Jane.Doe@Example.COM \n"

    # When it is normalised
    email = normalize_email(raw)

    # Then blanks are gone and every letter is lower-case; the dot stays
    assert email == "jane.doe@example.com"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("j.o.h.n.doe@gmail.com", "johndoe@gmail.com"),
        ("John.Doe+newsletter@Gmail.com", "johndoe@gmail.com"),
        ("john.doe+shop+2024@gmail.com", "johndoe@gmail.com"),
        ("JohnDoe@googlemail.com", "johndoe@gmail.com"),
        ("john.doe+x@GoogleMail.COM", "johndoe@gmail.com"),
    ],
)
def test_gmail_ignores_dots_and_tags_and_googlemail_is_gmail(raw: str, expected: str) -> None:
    # Given a Gmail address with dots, a +tag or the googlemail.com spelling
    # When it is normalised
    email = normalize_email(raw)

    # Then it is the mailbox Gmail actually delivers to
    assert email == expected


def test_gmail_spellings_of_one_mailbox_share_a_key() -> None:
    # Given one Gmail mailbox as three sources spell it
    spellings = ["John.Doe@gmail.com", "johndoe+crm@googlemail.com", " j.o.h.n.d.o.e@GMAIL.com"]

    # When each is normalised as an identity
    keys = {normalize_identity(_identity("email", raw)).key for raw in spellings}

    # Then they all meet on the same identity key
    assert keys == {"email:johndoe@gmail.com"}


@pytest.mark.parametrize(
    "raw",
    ["john.doe@example.com", "j.ohn.doe@outlook.com", "first.middle.last@mail.gmail.com", "a.b@gmail.co.uk"],
)
def test_dots_are_kept_for_other_domains(raw: str) -> None:
    # Given an address at a domain other than gmail.com / googlemail.com
    # When it is normalised
    email = normalize_email(raw)

    # Then its dots are significant and kept
    assert email == raw
    assert normalize_email("johndoe@example.com") != normalize_email("john.doe@example.com")


@pytest.mark.parametrize("raw", ["john+news@example.com", "John+Shop@Outlook.com"])
def test_plus_tags_are_kept_for_other_domains(raw: str) -> None:
    # Given a +tag at a domain that may treat it as part of the mailbox
    # When it is normalised
    email = normalize_email(raw)

    # Then the tag is kept (only lower-cased)
    assert email == raw.lower()
    assert "+" in email


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "plainaddress",
        "no-at.example.com",
        "jane@localhost",
        "jane@@example.com",
        "two words@example.com",
        "jane@-example.com",
        "jane@example-.com",
        "jane@example..com",
        "jane@example.com.",
        "@example.com",
        "x" * 65 + "@example.com",
        "+news@gmail.com",
        "...@googlemail.com",
    ],
)
def test_invalid_email_is_rejected_naming_the_value(raw: str) -> None:
    # Given something that is not a deliverable address (or is empty once Gmail rules apply)
    # When it is normalised
    error = _rejected_email(raw)

    # Then it is rejected as invalid input, and the problem detail names the value
    assert isinstance(error, InvalidInput)
    assert error.status == 400
    assert error.code == "invalid-identity"
    assert repr(raw) in error.detail


# -- phone -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        # Germany: leading trunk 0, spaces, dashes, parentheses, 00 prefix, "(0)" after the country code
        ("030 1234567", "DE", "+49301234567"),
        ("030-123 4567", "DE", "+49301234567"),
        ("(030) 1234567", "DE", "+49301234567"),
        ("0049 30 1234567", "DE", "+49301234567"),
        ("+49 (0) 30 1234567", None, "+49301234567"),
        ("+49 (0)30 1234567", "FR", "+49301234567"),
        ("0171 1234567", "DE", "+491711234567"),
        # France
        ("01 23 45 67 89", "FR", "+33123456789"),
        ("06-12-34-56-78", "FR", "+33612345678"),
        ("+33 (0) 6 12 34 56 78", None, "+33612345678"),
        # United Kingdom
        ("020 7946 0958", "GB", "+442079460958"),
        ("(020) 7946-0958", "GB", "+442079460958"),
        ("+44 (0) 20 7946 0958", None, "+442079460958"),
        # United States
        ("(202) 555-0123", "US", "+12025550123"),
        ("202-555-0123", "US", "+12025550123"),
        ("1 212 555 0100", "US", "+12125550100"),
        ("+1 (212) 555-0100", None, "+12125550100"),
        ("  (415) 555-2671 ", "US", "+14155552671"),
    ],
)
def test_phone_is_normalised_to_e164(raw: str, region: str | None, expected: str) -> None:
    # Given a number in a national or international format, with a default region where needed
    # When it is normalised
    phone = normalize_phone(raw, region)

    # Then it is in E.164
    assert phone == expected


def test_national_and_international_spellings_share_a_key() -> None:
    # Given one German number as a shop (national) and a call centre (international) record it
    shop = normalize_identity(_identity("phone", "030 / 123 45 67"), default_region="DE")
    callcenter = normalize_identity(_identity("phone", "+49 (0) 30-1234567"))

    # When / Then both normalise to the same identity
    assert shop == callcenter == NormalizedIdentity("phone", "", "+49301234567")


def test_national_number_without_a_region_is_rejected() -> None:
    # Given a national number and no default region
    raw = "030 1234567"

    # When it is normalised
    error = _rejected_phone(raw, None)

    # Then it is rejected, the detail names the value and says a region is needed
    assert repr(raw) in error.detail
    assert "region" in error.detail


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("+49 123", None),
        ("+1 (123) 456-7890", None),
        ("12", "DE"),
        ("not a number", "DE"),
        ("", "DE"),
        ("030 1234567", "XX"),
    ],
)
def test_invalid_phone_is_rejected_naming_the_value(raw: str, region: str | None) -> None:
    # Given a number that cannot be parsed, or is not valid for its region
    # When it is normalised
    error = _rejected_phone(raw, region)

    # Then it is rejected as an invalid identity naming the value
    assert error.code == "invalid-identity"
    assert repr(raw) in error.detail


# -- other identifiers -----------------------------------------------------------------------------
def test_loyalty_card_is_trimmed_and_upper_cased() -> None:
    # Given a loyalty card number typed in lower case with blanks around it
    identity = _identity("loyalty_card", " ab-1234-x9 ")

    # When it is normalised
    normalized = normalize_identity(identity)

    # Then it is upper-cased and keyed without a namespace
    assert normalized == NormalizedIdentity("loyalty_card", "", "AB-1234-X9")
    assert normalized.key == "loyalty_card:AB-1234-X9"


@pytest.mark.parametrize("type_", ["loyalty_card", "device_id"])
def test_token_with_blanks_inside_is_rejected(type_: str) -> None:
    # Given a token with a blank in the middle
    identity = _identity(type_, "card 42")

    # When / Then it is rejected naming the value
    with pytest.raises(InvalidIdentity, match="card 42"):
        normalize_identity(identity)


def test_device_id_keeps_its_case() -> None:
    # Given a device id (opaque, case-sensitive)
    identity = _identity("device_id", " Tab-7f3A ")

    # When it is normalised
    normalized = normalize_identity(identity)

    # Then it is only trimmed
    assert normalized.value == "Tab-7f3A"


def test_external_ids_are_namespaced_by_the_issuing_system() -> None:
    # Given the same value issued by two systems
    erp = _identity("external_id", "42", namespace="erp")
    shop = _identity("external_id", "42", namespace="shop")

    # When both are normalised
    identities = normalize_all([erp, shop])

    # Then they are two identities with two keys
    assert [i.key for i in identities] == ["external_id:erp:42", "external_id:shop:42"]


def test_external_id_needs_a_namespace() -> None:
    # Given an external id without the system that issued it
    # When it is validated
    # Then it is refused, saying a namespace is needed
    with pytest.raises(ValidationError, match="namespace"):
        _identity("external_id", "42")


# -- normalize_all ---------------------------------------------------------------------------------
RECORD = [
    _identity("email", "Jane.Doe@Example.com"),
    _identity("email", " jane.doe@example.COM"),
    _identity("phone", "030 1234567"),
    _identity("phone", "+49 (0) 30 1234567"),
    _identity("external_id", "C-1001", namespace="erp"),
    _identity("loyalty_card", "ab-1"),
    _identity("loyalty_card", "AB-1"),
]


def test_normalize_all_removes_duplicates() -> None:
    # Given a record naming the same email, phone and card twice in different spellings
    # When all identities are normalised
    identities = normalize_all(RECORD, default_region="DE")

    # Then each appears once, in a stable order
    assert identities == [
        NormalizedIdentity("email", "", "jane.doe@example.com"),
        NormalizedIdentity("external_id", "erp", "C-1001"),
        NormalizedIdentity("loyalty_card", "", "AB-1"),
        NormalizedIdentity("phone", "", "+49301234567"),
    ]


@FAST
@given(st.permutations(RECORD))
def test_normalize_all_does_not_depend_on_order(record: list[IdentityIn]) -> None:
    # Given the record's identities in any order
    # When they are normalised
    # Then the result is the same as for the original order
    assert normalize_all(record, default_region="DE") == normalize_all(RECORD, default_region="DE")


def test_normalize_all_rejects_the_record_when_one_identity_is_invalid() -> None:
    # Given a record with one invalid email among valid identities
    record = [_identity("phone", "+49 30 1234567"), _identity("email", "not-an-address")]

    # When / Then the whole record is refused, naming the bad value
    with pytest.raises(InvalidIdentity, match="not-an-address"):
        normalize_all(record)


# -- properties ------------------------------------------------------------------------------------
_LOCAL_CHARS = string.ascii_letters + string.digits
_gmail_addresses = st.builds(
    lambda local, tag, domain: f"{local}{tag}@{domain}",
    st.builds(operator.add, st.sampled_from("aZ9"), st.text(_LOCAL_CHARS + ".", max_size=20)),
    st.one_of(st.just(""), st.text(_LOCAL_CHARS + ".+-", max_size=10).map("+".__add__)),
    st.sampled_from(["gmail.com", "googlemail.com", "GMail.com", "GOOGLEMAIL.COM"]),
)
_addresses = st.one_of(st.emails(), _gmail_addresses)


@FAST
@given(_addresses)
def test_normalize_email_is_idempotent(raw: str) -> None:
    # Given any valid address, once normalised
    once = normalize_email(raw)

    # When the result is normalised again
    twice = normalize_email(once)

    # Then nothing more changes
    assert twice == once


@FAST
@given(_addresses.flatmap(lambda raw: st.tuples(st.just(raw), st.lists(st.booleans(), min_size=len(raw)))))
def test_addresses_differing_only_by_case_normalise_equal(case: tuple[str, list[bool]]) -> None:
    # Given a valid address and a copy with the case of any of its letters flipped
    raw, flips = case
    variant = "".join(c.swapcase() if flip else c for c, flip in zip(raw, flips, strict=False))

    # When both are normalised
    # Then they are the same
    assert normalize_email(variant) == normalize_email(raw)
