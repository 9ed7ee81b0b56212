"""Messages by template id: the reference in a request, its resolution to pinned parts, the port's answers,
the cache of versions, and the personalization function that answers the port."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ecrm.broadcast.models import MessageRequest
from ecrm.broadcast.templates import (
    CachedTemplates,
    LambdaTemplates,
    StoredTemplate,
    TemplateUnusable,
    resolve_content,
    stored_template_of,
)
from ecrm.core.clock import FixedClock
from ecrm.core.errors import InvalidInput, ServiceUnavailable
from pydantic import ValidationError

TPL = "tpl_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"
OTHER = "tpl_01JD3Z6Q5N8V4W7X2Y9A0B1C2E"
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def email_template(version: int, *, subject: str = "Hello {{ customer.first_name }}") -> StoredTemplate:
    return StoredTemplate(
        template_id=TPL,
        version=version,
        channel="email",
        default_locale="en",
        variants={
            "en": {"subject": f"{subject} v{version}", "html": "<p>Hi {{ customer.first_name }}</p>"},
            "fr": {"subject": "Bonjour {{ customer.first_name }}", "html": "<p>Salut</p>", "text": "Salut"},
            "fr-CA": {"subject": "Allo", "html": "<p>Allo</p>"},
        },
    )


class Templates:
    """The templates function's answers, kept here: versions of one template, and the calls made."""

    def __init__(self, *versions: StoredTemplate) -> None:
        self.versions = {t.version: t for t in versions}
        self.calls: list[tuple[str, int | None]] = []

    def template(self, template_id: str, version: int | None) -> StoredTemplate | None:
        self.calls.append((template_id, version))
        if template_id != TPL or not self.versions:
            return None
        return self.versions.get(version or max(self.versions))


def request(content: dict[str, Any]) -> MessageRequest:
    return MessageRequest.model_validate({"customer_id": "c1", "purpose": "marketing", "content": content})


def test_a_channel_names_a_template_instead_of_its_parts() -> None:
    body = request({"email": {"template_id": TPL, "version": "2"}, "sms": {"body": "Hi"}})
    assert body.content["email"] == {"template_id": TPL, "version": 2}  # normalised: one fingerprint per meaning
    with pytest.raises(ValidationError, match="names a template wrongly"):
        request({"email": {"template_id": "tpl_nope"}})
    with pytest.raises(ValidationError, match="names a template wrongly"):
        request({"email": {"template_id": TPL, "subject": "mixed with parts"}})
    with pytest.raises(ValidationError, match="names a template wrongly"):
        request({"email": {"template_id": TPL, "version": 0}})


def test_the_latest_version_is_pinned_with_its_variants_parts() -> None:
    source = Templates(email_template(1), email_template(2))
    content, pinned = resolve_content(request({"email": {"template_id": TPL}, "sms": {"body": "Hi"}}).content, source)
    assert content["email"] == {
        "subject": "Hello {{ customer.first_name }} v2",
        "html": "<p>Hi {{ customer.first_name }}</p>",
    }
    assert content["sms"] == {"body": "Hi"}
    assert pinned["email"].model_dump() == {"template_id": TPL, "version": 2, "locale": "en"}
    content, pinned = resolve_content(request({"email": {"template_id": TPL, "version": 1}}).content, source)
    assert (content["email"]["subject"], pinned["email"].version) == ("Hello {{ customer.first_name }} v1", 1)


@pytest.mark.parametrize(
    ("asked", "chosen"), [("fr-ca", "fr-CA"), ("fr-BE", "fr"), ("FR", "fr"), ("de", "en"), ("en-GB", "en")]
)
def test_the_variant_is_the_tag_else_its_language_else_the_default(asked: str, chosen: str) -> None:
    ref = {"template_id": TPL, "locale": asked}
    _, pinned = resolve_content(request({"email": ref}).content, Templates(email_template(1)))
    assert pinned["email"].locale == chosen


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ({"email": {"template_id": OTHER}}, "does not exist"),
        ({"email": {"template_id": TPL, "version": 9}}, "version 9 does not exist"),
        ({"sms": {"template_id": TPL}}, "is a email template, not sms"),
        ({"webhook": {"template_id": TPL}}, "give webhook content inline"),
    ],
)
def test_what_cannot_be_sent_is_a_422_naming_the_channel(content: dict[str, Any], why: str) -> None:
    with pytest.raises(TemplateUnusable, match=why) as refused:
        resolve_content(request(content).content, Templates(email_template(1)))
    assert refused.value.status == 422
    assert refused.value.extensions["field"] == f"content.{next(iter(content))}"


def test_a_template_broadcast_cannot_render_is_refused_at_request_time() -> None:
    money = email_template(1, subject="Only {{ 12|money('EUR') }}")
    with pytest.raises(TemplateUnusable, match="no filter named 'money'"):
        resolve_content(request({"email": {"template_id": TPL}}).content, Templates(money))
    two_lines = email_template(1, subject="Hi\r\nBcc: everyone@example.com")
    with pytest.raises(TemplateUnusable, match="subject on several lines"):
        resolve_content(request({"email": {"template_id": TPL}}).content, Templates(two_lines))
    with pytest.raises(TemplateUnusable, match="not available"):
        resolve_content(request({"email": {"template_id": TPL}}).content, None)


def test_a_saved_version_is_asked_once_and_the_latest_again_after_a_while() -> None:
    source, clock = Templates(email_template(1)), FixedClock(NOW)
    cached = CachedTemplates(source, clock, latest_for=timedelta(seconds=30))
    for _ in range(3):
        assert cached.template(TPL, None) is not None
        assert cached.template(TPL, 1) is not None
    assert source.calls == [(TPL, None)]  # the latest answered version 1, which is kept
    source.versions[2] = email_template(2)
    clock.advance(seconds=31)
    assert cached.template(TPL, None).version == 2  # type: ignore[union-attr]
    assert cached.template(OTHER, None) is None


class FakeLambda:
    def __init__(self, answer: Any, *, error: bool = False) -> None:
        self.answer = answer
        self.error = error
        self.payloads: list[dict[str, Any]] = []

    def invoke(self, *, FunctionName: str, Payload: bytes) -> dict[str, Any]:
        self.payloads.append(json.loads(Payload))
        response: dict[str, Any] = {"Payload": io.BytesIO(json.dumps(self.answer).encode())}
        if self.error:
            response["FunctionError"] = "Unhandled"
        return response


def test_the_port_asks_the_function_and_reads_its_answers() -> None:
    body = {"channel": "sms", "default_locale": "en", "variants": {"en": {"body": "Hi"}}}
    client = FakeLambda({"found": True, "template": {"template_id": TPL, "version": 3, "body": body}})
    found = LambdaTemplates(client, "templates-fn").template(TPL, None)
    assert found == StoredTemplate(TPL, 3, "sms", "en", {"en": {"body": "Hi"}})
    assert client.payloads == [{"operation": "template", "template_id": TPL, "version": None}]
    assert LambdaTemplates(FakeLambda({"found": False, "reason": "no"}), "fn").template(TPL, 2) is None
    with pytest.raises(ServiceUnavailable, match="failed"):
        LambdaTemplates(FakeLambda({"errorMessage": "boom"}, error=True), "fn").template(TPL, None)
    with pytest.raises(ServiceUnavailable, match="cannot read"):
        stored_template_of({"found": True, "template": {"template_id": TPL}})
    with pytest.raises(ServiceUnavailable, match="not available"):
        LambdaTemplates(FakeLambda({}), "").template(TPL, None)


class TemplateStoreDouble:
    def __init__(self) -> None:
        self.asked: list[tuple[str, int | None]] = []

    def template(self, template_id: str, version: int | None = None) -> Any:
        from ecrm.personalization.service_models import StoredTemplate as Saved

        self.asked.append((template_id, version))
        if version == 7:
            return None
        body = {"name": "n", "channel": "sms", "default_locale": "en", "variants": {"en": {"body": "Hi"}}}
        return Saved(
            template_id=template_id,
            version=version or 2,
            latest_version=2,
            name="n",
            channel="sms",
            created_at=NOW,
            created_by="staff:a",
            template=body,
        )


def test_the_personalization_function_answers_found_or_not_and_refuses_bad_payloads(lambda_context: Any) -> None:
    from functions.personalization import task_templates

    service = TemplateStoreDouble()
    handler: Any = task_templates.handler
    answer = handler({"operation": "template", "template_id": TPL, "version": None}, lambda_context, service)
    assert stored_template_of(answer) == StoredTemplate(TPL, 2, "sms", "en", {"en": {"body": "Hi"}})
    missing = handler({"operation": "template", "template_id": TPL, "version": 7}, lambda_context, service)
    assert missing == {"found": False, "reason": f"version 7 of template {TPL} does not exist"}
    bad_payloads: list[Any] = [{"operation": "template", "template_id": "../x"}, {"operation": "delete"}, []]
    for bad in bad_payloads:
        with pytest.raises(InvalidInput, match="not a template lookup"):
            handler(bad, lambda_context, service)
    assert service.asked == [(TPL, None), (TPL, 7)]
