"""Identifiers: ULID layout, time-ordered, unique, with an optional type prefix."""

from __future__ import annotations

import re

from ecrm.core.ids import is_id, new_id
from hypothesis import given
from hypothesis import strategies as st

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
MAX_MILLIS = 2**48 - 1  # ULID time field: 48 bits


def _millis_of(ulid: str) -> int:
    value = 0
    for char in ulid[:10]:
        value = value * 32 + CROCKFORD.index(char)
    return value


def test_an_id_is_26_crockford_characters_after_its_prefix():
    # Given / When
    plain, prefixed = new_id(), new_id("png_")

    # Then
    assert ULID.match(plain)
    assert prefixed.startswith("png_")
    assert ULID.match(prefixed.removeprefix("png_"))
    assert is_id(plain)
    assert is_id(prefixed, "png_")


def test_the_first_ten_characters_encode_the_millisecond():
    # Given a known instant
    millis = 1_795_428_930_123

    # When an id is made at that instant
    value = new_id(now_ms=millis)

    # Then its time part decodes back to it
    assert _millis_of(value) == millis


def test_ids_are_unique():
    # Given / When many ids made in the same millisecond
    ids = {new_id(now_ms=1_795_428_930_123) for _ in range(5000)}

    # Then none repeats (80 random bits each)
    assert len(ids) == 5000


@given(st.integers(0, MAX_MILLIS - 1), st.integers(1, 10**9))
def test_ids_sort_by_creation_time(earlier, gap):
    # Given two instants in order
    later = min(earlier + gap, MAX_MILLIS)

    # When ids are made at each
    first, second = new_id("evt_", now_ms=earlier), new_id("evt_", now_ms=later)

    # Then plain string order is time order
    assert first < second


def test_is_id_rejects_what_is_not_an_id():
    # Given values that are not ids of the expected kind
    good = new_id("png_")

    # Then
    assert not is_id(good, "cus_")  # wrong prefix
    assert not is_id(good)  # prefix not expected
    assert not is_id(good.lower(), "png_")  # not Crockford upper case
    assert not is_id(good[:-1], "png_")  # too short
    assert not is_id(good + "0", "png_")  # too long
    assert not is_id("png_" + "I" * 26, "png_")  # I, L, O, U are not in the alphabet
