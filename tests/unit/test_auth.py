"""The principal behind an API request, from the Cognito authorizer's claims."""

from __future__ import annotations

import pytest
from ecrm.core.auth import (
    Principal,
    parse_groups,
    principal_from_claims,
    principal_from_event,
    require_customer,
    require_staff,
)
from ecrm.core.errors import Forbidden, Unauthorized

from tests.samples import load_sample


def _claims(sample: str) -> dict[str, str]:
    return load_sample(f"apigateway/{sample}")["requestContext"]["authorizer"]["claims"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["marketer", "analyst"], {"marketer", "analyst"}),  # a decoded JWT
        ("marketer,analyst", {"marketer", "analyst"}),  # REST API Cognito authorizer
        ("marketer, analyst", {"marketer", "analyst"}),
        ("[marketer analyst]", {"marketer", "analyst"}),  # HTTP API JWT authorizer
        ("[]", set()),
        ("admin", {"admin"}),
        ("", set()),
        (None, set()),
        ([], set()),
    ],
)
def test_parse_groups_reads_every_shape_the_authorizers_send(raw, expected):
    # Given / When / Then
    assert parse_groups(raw) == frozenset(expected)


def test_a_staff_principal_comes_from_the_sample_claims():
    # Given the claims of a staff member's token
    claims = _claims("rest_get_whoami_staff.json")

    # When the principal is built
    principal = principal_from_claims(claims)

    # Then it carries who they are and their groups
    assert principal.subject == "9a7b2c1d-0e4f-4a5b-8c6d-7e8f9a0b1c2d"
    assert principal.username == "marketer@example.com"
    assert principal.email == "marketer@example.com"
    assert principal.groups == {"marketer", "analyst"}
    assert principal.customer_id is None
    assert principal.is_staff


def test_a_customer_principal_has_a_customer_id_and_no_groups():
    # Given / When
    principal = principal_from_claims(_claims("rest_get_whoami_customer.json"))

    # Then
    assert principal.customer_id == "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"
    assert principal.groups == frozenset()
    assert not principal.is_staff


@pytest.mark.parametrize("claims", [None, {}, {"email": "x@example.com"}, {"sub": ""}])
def test_claims_without_a_subject_are_unauthorized(claims):
    # Given / When / Then
    with pytest.raises(Unauthorized):
        principal_from_claims(claims)


def test_claims_missing_sub_from_a_sample_are_unauthorized():
    # Given a real token's claims with the subject removed
    claims = _claims("rest_get_whoami_staff.json")
    del claims["sub"]

    # When / Then
    with pytest.raises(Unauthorized):
        principal_from_claims(claims)


def test_a_public_request_has_no_principal():
    # Given a request that went through no authorizer
    event = load_sample("apigateway/rest_get_health_public.json")

    # When / Then
    with pytest.raises(Unauthorized):
        principal_from_event(event)


def test_require_staff_rejects_a_customer():
    # Given a customer
    customer = principal_from_claims(_claims("rest_get_whoami_customer.json"))

    # When / Then
    with pytest.raises(Forbidden):
        require_staff(customer)


def test_require_staff_accepts_any_staff_group_by_default():
    # Given a marketer
    staff = principal_from_claims(_claims("rest_get_whoami_staff.json"))

    # When / Then
    assert require_staff(staff) is staff


def test_require_staff_with_named_groups_rejects_other_staff():
    # Given a marketer and analyst, on a route for admins only
    staff = principal_from_claims(_claims("rest_get_whoami_staff.json"))

    # When / Then the error names the group needed
    with pytest.raises(Forbidden, match="admin"):
        require_staff(staff, groups=["admin"])


def test_require_customer_returns_the_id_from_the_token():
    # Given / When / Then
    customer = principal_from_claims(_claims("rest_get_whoami_customer.json"))
    assert require_customer(customer) == "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"


def test_require_customer_rejects_staff_without_a_customer_id():
    # Given / When / Then
    with pytest.raises(Forbidden):
        require_customer(Principal(subject="s", groups=frozenset({"admin"})))
