"""Domain errors and their RFC 9457 problem+json form."""

from __future__ import annotations

import pytest
from ecrm.core.errors import (
    PROBLEM_TYPE_BASE,
    Conflict,
    EcrmError,
    Forbidden,
    InvalidInput,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
    problem,
)
from ecrm.core.publisher import EventsNotPublished, FailedEntry, PublishReceipt
from ecrm.platform.models import PingRequested


@pytest.mark.parametrize(
    ("error_cls", "status", "code"),
    [
        (InvalidInput, 400, "invalid-input"),
        (Unauthorized, 401, "unauthorized"),
        (Forbidden, 403, "forbidden"),
        (NotFound, 404, "not-found"),
        (Conflict, 409, "conflict"),
        (ServiceUnavailable, 503, "service-unavailable"),
        (EcrmError, 500, "internal-error"),
    ],
)
def test_each_error_renders_a_problem_with_its_status_and_type(error_cls, status, code):
    # Given an error raised by domain logic
    error = error_cls("what went wrong")

    # When it is rendered for the API
    body = error.to_problem("/pings/png_1")

    # Then it is an RFC 9457 problem whose type names the error
    assert body == {
        "type": PROBLEM_TYPE_BASE + code,
        "title": error_cls.title,
        "status": status,
        "detail": "what went wrong",
        "instance": "/pings/png_1",
    }
    assert isinstance(error, EcrmError)
    assert str(error) == "what went wrong"


def test_problem_without_instance_leaves_the_member_out():
    # Given / When a problem with no instance
    body = problem(404, "Not found", "no such ping", code="not-found")

    # Then the optional member is absent rather than null
    assert "instance" not in body


def test_problem_without_code_derives_the_type_from_the_title():
    # Given / When a problem built from a title only
    body = problem(429, "Too Many Requests", "slow down")

    # Then its type is the title as a slug
    assert body["type"] == PROBLEM_TYPE_BASE + "too-many-requests"


def test_extensions_are_added_to_the_problem():
    # Given an error carrying extra members
    error = InvalidInput("email is not valid", errors=[{"field": "email"}], retryable=False)

    # When it is rendered
    body = error.to_problem()

    # Then the extensions sit beside the standard members
    assert body["errors"] == [{"field": "email"}]
    assert body["retryable"] is False
    assert body["status"] == 400


@pytest.mark.parametrize("member", ["status", "instance"])
def test_an_extension_never_replaces_or_collides_with_a_standard_member(member):
    # Given an error whose extensions happen to use a standard member's name
    error = InvalidInput("bad", **{member: "from-extension"})

    # When it is rendered
    body = error.to_problem("/pings")

    # Then the standard members still describe the error itself
    assert body["status"] == 400
    assert body["instance"] == "/pings"


def test_events_not_published_is_a_retryable_503_naming_the_failure_codes():
    # Given a receipt with failures
    event = PingRequested(ping_id="png_1", message="m", requested_by="u", requested_at="2026-11-23T10:15:30Z")
    receipt = PublishReceipt(failed=[FailedEntry(event, "AccessDeniedException", "denied")])

    # When the error is built
    error = EventsNotPublished(receipt)

    # Then it is a service-unavailable problem that keeps the receipt
    assert isinstance(error, ServiceUnavailable)
    assert error.status == 503
    assert "1 event(s)" in error.detail
    assert "AccessDeniedException" in error.detail
    assert error.receipt is receipt
