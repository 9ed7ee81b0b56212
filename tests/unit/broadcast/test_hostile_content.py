"""Hostile content and addresses, refused before anything is stored or sent: jinja2 sandbox escapes and resource
exhaustion in message content, header injection through an email subject, webhook endpoints aimed inside the
network (loopback, private ranges, the instance metadata address in every spelling an HTTP client reads)."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email.policy import default
from typing import Any

import pytest
from ecrm.broadcast.channels.base import OutboundMessage
from ecrm.broadcast.channels.email import build_mime
from ecrm.broadcast.models import MessageRequest, WebhookEndpointIn
from ecrm.broadcast.rendering import RenderFailed, check_templates, render_parts
from ecrm.broadcast.service import MessageService, refused_webhook_host
from ecrm.core.clock import FixedClock
from ecrm.core.errors import InvalidInput
from pydantic import ValidationError

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
PROFILE = {"first_name": "Ada"}
DATA = {"n": 99_999, "text": "a" * 100_000, "numbers": [1, 2, 3], "nested": {"k": "v"}}


def render(source: str, data: dict[str, Any] | None = None) -> str:
    check_templates({"sms": {"body": source}})
    return str(render_parts({"body": source}, profile=PROFILE, data=DATA if data is None else data)["body"])


# Refused when the message is requested: the template does not compile in the sandbox.
REFUSED_AT_REQUEST = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",  # the classic escape: a call
    "{{ '{0.__class__}'.format(data) }}",
    "{{ data.update({'k': 'changed'}) }}",  # mutation of the request's data
    "{{ range(10**7)|list|length }}",
    "{{ 'x'.ljust(999999999) }}",  # a string method as a memory bomb
    "{% for i in range(99999) %}{% for j in range(99999) %}x{% endfor %}{% endfor %}",
    "{% macro m(n) %}{{ m(n) }}{{ m(n) }}{% endmacro %}{{ m(1) }}",  # exponential recursion
    "{% include 'other' %}",
    "{% extends 'base' %}",
    "{% import 'x' as y %}",
    "{{ data|attr('__class__') }}",
    "{{ '%s'|format(data) }}",
    "{{ data.text|center(999999999) }}",
    "{{ data.text|wordwrap(1) }}",
    "{{ data.numbers|batch(999999999) }}",
    "{{ data.numbers|random }}",  # a retry must render the same text
    "{{ data.text",  # plain bad syntax
]


@pytest.mark.parametrize("source", REFUSED_AT_REQUEST)
def test_escapes_and_bombs_that_compile_to_calls_or_forbidden_tags_are_refused_at_request(source: str) -> None:
    with pytest.raises(InvalidInput, match=r"content\.sms\.body is not a valid template"):
        check_templates({"sms": {"body": source}})


# Compile, but fail the render (the message ends `failed`, reason `render_error`, nothing is sent).
FAILED_AT_RENDER = [
    ("{{ 'x' * 100000000 }}", "repetition"),
    ("{{ data.numbers * 100000000 }}", "repetition"),
    ("{{ data.n ** data.n }}", "power"),
    ("{{ 10 ** 1000 }}", "power"),
    ("{{ '%099999999d' % 1 }}", "formatting"),
    ("{% for a in data.text %}{% for b in data.text %}{% endfor %}{% endfor %}", "loops more than"),
    ("{{ data.text|replace('', data.text) }}", "replacement"),
    ("{{ data.numbers|join(data.text * 2) }}", "join"),
    ("{% for a in data.text %}{{ data.text }}{% endfor %}", "longer than"),
    ("{% set a = data.text ~ data.text %}{% set a = a ~ a %}{% set a = a ~ a %}{{ a|length }}", "longer than"),
    ("{% set a = data.text + data.text %}{% set a = a + a %}{% set a = a + a %}{{ a|length }}", "longer than"),
]


@pytest.mark.parametrize(("source", "why"), FAILED_AT_RENDER)
def test_resource_bombs_stop_with_a_render_failure(source: str, why: str) -> None:
    with pytest.raises(RenderFailed, match=why):
        render(source)


@pytest.mark.parametrize(
    "source",
    [
        "{{ cycler.__init__.__globals__.os }}",
        "{{ lipsum.__globals__ }}",
        "{{ self.__init__.__globals__ }}",
        "{{ self._TemplateReference__context }}",
        "{{ profile.__class__ }}",
        "{{ data.nested.__class__.__base__ }}",
        "{{ namespace }}{{ joiner }}{{ config }}{{ request }}",
    ],
)
def test_what_the_sandbox_hides_renders_empty(source: str) -> None:
    assert render(source) == ""


def test_ordinary_content_still_renders_and_the_data_is_never_changed() -> None:
    data = {"items": [{"name": "scarf"}, {"name": "hat"}], "nested": {"k": "v"}}
    text = render(
        "Hi {{ customer.first_name|upper }} {% for i in data['items'] %}{{ loop.index }}:{{ i.name }} {% endfor %}"
        "{{ 2 ** 10 }} {{ 'ab' * 2 }} {{ data.nested.k|default('-') }} {{ data.missing.deeper|default('none') }} "
        "{{ 'a' ~ (1 + 2) }}",
        data,
    )
    assert text == "Hi ADA 1:scarf 2:hat 1024 abab v none a3"
    assert data == {"items": [{"name": "scarf"}, {"name": "hat"}], "nested": {"k": "v"}}


def test_a_subject_with_cr_or_lf_is_refused_and_one_from_the_data_renders_on_one_line() -> None:
    for subject in ("Hi\r\nBcc: all@example.com", "Hi\nX-Evil: 1", "Hi\r"):
        with pytest.raises(ValidationError, match="one line"):
            MessageRequest.model_validate(
                {
                    "customer_id": "c1",
                    "purpose": "transactional",
                    "content": {"email": {"subject": subject, "text": "x"}},
                }
            )
    injected = {"name": "Ada\r\nBcc: everyone@example.com\r\n\r\nforged body"}
    parts = render_parts(
        {"subject": "Hello {{ data.name }}", "text": "Hi {{ data.name }}", "from": "evil@example.com\r\nBcc: x@y.z"},
        profile={},
        data=injected,
    )
    assert parts["subject"] == "Hello Ada Bcc: everyone@example.com  forged body"
    outbound = OutboundMessage(
        message_id="msg_" + "A" * 26,
        customer_id="c1",
        channel="email",
        address="ada@example.com",
        purpose="transactional",
        topic=None,
        content=parts,
        tags={"message_id": "msg_" + "A" * 26},
    )
    mime = build_mime(outbound, sender="eCRM <news@example.com>", sent_at=NOW)
    parsed = email.message_from_bytes(mime.as_bytes(), policy=default)
    assert parsed["Bcc"] is None
    assert parsed["From"] == "eCRM <news@example.com>"  # a `from` part in the content is not a header
    assert str(parsed["Subject"]) == "Hello Ada Bcc: everyone@example.com  forged body"
    assert [k for k in parsed if k.lower() not in {"content-type", "content-transfer-encoding", "mime-version"}] == [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "X-Ecrm-Message-Id",
    ]


INSIDE = [
    "https://169.254.169.254/latest/meta-data/",
    "https://169.254.169.254.nip.io.internal/",
    "https://2852039166/",  # 169.254.169.254 as one decimal number
    "https://0xa9fea9fe/",
    "https://0251.0376.0251.0376/",
    "https://169.254.43518/",
    "https://[::ffff:169.254.169.254]/",
    "https://[fd00:ec2::254]/",  # the instance metadata service over IPv6
    "https://hooks.example.com@169.254.169.254/",
    "https://10.0.0.8/hook",
    "https://172.16.5.4/",
    "https://192.168.1.10:8443/",
    "https://100.64.0.1/",
    "https://127.0.0.1/",
    "https://[::1]/",
    "https://0:443/",
    "https://0.0.0.0/",
    "https://localhost/",
    "https://LOCALHOST./",
    "https://api.localhost/",
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://224.0.0.1/",
]


@pytest.mark.parametrize("url", INSIDE)
def test_webhook_endpoints_inside_the_network_are_refused(url: str) -> None:
    class Endpoints:
        saved: list[str] = []

        def put_endpoint(self, endpoint_id: str, *, url: str, secret: str, customer_id: str | None) -> None:
            self.saved.append(url)

    store = Endpoints()
    service = MessageService(store, FixedClock(NOW))  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="may not point at"):
        service.add_endpoint(WebhookEndpointIn(url=url))
    assert store.saved == []


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/", "ftp://hooks.example.com/", "https://a b/", "javascript:alert(1)", "//x.y/"]
)
def test_webhook_urls_that_are_not_https_are_refused_by_the_body(url: str) -> None:
    with pytest.raises(ValidationError):
        WebhookEndpointIn(url=url)


def test_public_webhook_hosts_are_accepted() -> None:
    for url in (
        "https://hooks.example.com/in",
        "https://8.8.8.8/x",
        "https://[2001:4860:4860::8888]/",
        "https://deadbeef/",
    ):
        assert refused_webhook_host(url) == ""
    assert refused_webhook_host("http://127.0.0.1:8080/h", allow_loopback=True) == ""
