"""Rejected requests are logged without what the caller sent: emails and phones stay out of the logs.

The problem returned to the caller may echo their input; the log line says only which problem it was.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from ecrm.customers.import_jobs import ImportDesk
from ecrm.customers.service import CustomerService

from functions.customers import api
from tests.samples import api_request

EMAIL = "private.person@example.com"
PHONE = "+14155550123"
NOT_A_PHONE = "+99988877766655544"  # too long for any plan


@pytest.fixture
def call(service: CustomerService, lambda_context: Any) -> Any:
    deps = api.Deps(service, ImportDesk(service.store, None, "imports", service.clock))

    def invoke(event: dict[str, Any]) -> tuple[int, Any]:
        response = api.handler(event, lambda_context, deps)
        return response["statusCode"], json.loads(response["body"])

    return invoke


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """What the function's logger writes (its handler holds the stdout it was created with, so capsys misses it)."""
    stream = io.StringIO()
    handler = api.obs.logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)


def test_failed_lookups_and_refused_identities_leave_no_email_or_phone_in_the_logs(
    call: Any, log_lines: io.StringIO
) -> None:
    # Given requests that are refused because of the personal values they carry
    requests = [
        api_request("GET", "/customers", query={"email": EMAIL}),  # nobody has it: 404
        api_request("GET", "/customers", query={"phone": PHONE}),
        api_request(
            "POST", "/customers", body={"source": "web", "identities": [{"type": "email", "value": EMAIL[:-4]}]}
        ),
        api_request(
            "POST", "/customers", body={"source": "web", "identities": [{"type": "phone", "value": NOT_A_PHONE}]}
        ),
        api_request("POST", "/customers", body={"source": "web", "identities": [{"type": "fax", "value": EMAIL}]}),
    ]
    # When each is answered
    statuses = [call(event)[0] for event in requests]
    # Then each is a 4xx, and nothing the function logged holds the values
    assert statuses == [404, 404, 400, 400, 422]
    lines = log_lines.getvalue().splitlines()
    assert any('"problem":"not-found"' in line for line in lines), "the rejections are logged"
    for value in (EMAIL, EMAIL[:-4], PHONE, NOT_A_PHONE):
        assert not [line for line in lines if value in line], value
