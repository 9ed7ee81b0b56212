"""The local API front answers every HTTP method as API Gateway does: a gateway response, never an HTML page.

`http.server` answers a method it has no `do_<METHOD>` for with a 501 HTML page; API Gateway answers a
method or path no route has with its MISSING_AUTHENTICATION_TOKEN gateway response, which the template
makes an RFC 9457 problem (404, `route-not-found`).
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from infra.constructs.foundation import gateway_problem_template
from infra.local.gateway import LocalGateway
from infra.local.template import Resource, Template


def _gateway_response(response_type: str, status: str | None, code: str, title: str) -> Resource:
    properties: dict[str, Any] = {
        "ResponseType": response_type,
        "ResponseParameters": {"gatewayresponse.header.Content-Type": "'application/problem+json'"},
        "ResponseTemplates": {"application/json": gateway_problem_template(code, title, status)},
    }
    if status:
        properties["StatusCode"] = status
    return Resource(f"Problem{code}", "AWS::ApiGateway::GatewayResponse", properties, {}, [])


@pytest.fixture(scope="module")
def gateway() -> Iterator[LocalGateway]:
    # Given an API whose template has the platform's gateway responses and no route at all
    template = Template("test", {})
    for resource in (
        _gateway_response("MISSING_AUTHENTICATION_TOKEN", "404", "route-not-found", "Not found"),
        _gateway_response("DEFAULT_4XX", None, "bad-request", "Bad request"),
        _gateway_response("DEFAULT_5XX", None, "gateway-error", "Gateway error"),
    ):
        template.resources[resource.logical_id] = resource
    local = LocalGateway(template, {}, runtime=None, verifier=None, account="123456789012")  # type: ignore[arg-type]
    local.start()
    yield local
    local.stop()


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE", "TRACE", "CONNECT", "BREW", "PROPFIND"])
def test_a_method_no_route_has_is_the_templates_gateway_response_as_a_problem(
    gateway: LocalGateway, method: str
) -> None:
    # When any method, standard or not, asks for a path nothing serves
    connection = http.client.HTTPConnection("127.0.0.1", gateway.server.server_address[1], timeout=10)
    connection.request(method, "/nowhere")
    response = connection.getresponse()
    body = response.read()
    connection.close()
    # Then the answer is the template's MISSING_AUTHENTICATION_TOKEN response: a 404 problem
    assert response.status == 404, body
    assert response.getheader("Content-Type") == "application/problem+json"
    problem = json.loads(body)
    assert problem["type"] == "https://ecrm.dev/problems/route-not-found"
    assert problem["status"] == 404


def test_a_head_request_gets_the_status_and_headers_without_a_body(gateway: LocalGateway) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", gateway.server.server_address[1], timeout=10)
    connection.request("HEAD", "/nowhere")
    response = connection.getresponse()
    assert response.status == 404
    assert response.read() == b""
    connection.close()


def test_a_request_too_malformed_to_route_is_a_problem_not_an_html_page(gateway: LocalGateway) -> None:
    # When the request line is not HTTP
    with socket.create_connection(("127.0.0.1", gateway.server.server_address[1]), timeout=10) as raw:
        raw.sendall(b"GET /a b c HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
    # Then it is the template's default 4xx response, as problem+json
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), head
    assert b"Content-Type: application/problem+json" in head
    assert json.loads(body)["type"] == "https://ecrm.dev/problems/bad-request"
