"""Messages by template id on moto: broadcast asks personalization's templates function (run in process behind
a Lambda client double) for a template saved in personalization's table, pins the version, and renders it with
broadcast's sandbox; a template imported from Pinpoint goes out the same way."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from ecrm.broadcast.models import MessageRequest
from ecrm.broadcast.service import KeyReused, MessageService
from ecrm.broadcast.templates import CachedTemplates, LambdaTemplates, TemplateUnusable
from ecrm.personalization.content import parse_template
from ecrm.personalization.offer_service import OfferService
from ecrm.personalization.recommendation_service import RecommendationService
from ecrm.personalization.store import PersonalizationStore
from ecrm.personalization.template_service import TemplateService
from ecrm_ops.pinpoint.templates import translate_templates

from functions.broadcast import api, task_request_messages
from functions.personalization import task_templates
from tests.integration.broadcast.conftest import Engine
from tests.samples import api_request

PERSONALIZATION_TABLE = "ecrm-personalization"
WELCOME: dict[str, Any] = {
    "name": "Welcome",
    "channel": "email",
    "default_locale": "en",
    "variants": {
        "en": {"subject": "Welcome {{ customer.first_name }}", "html": "<p>Hello {{ customer.first_name }}</p>"},
        "fr": {"subject": "Bienvenue {{ customer.first_name }}", "html": "<p>Bonjour</p>", "text": "Bonjour"},
    },
}


class InProcessLambda:
    """`lambda:InvokeFunction` of the templates function, run here with the function's own handler."""

    def __init__(self, store: PersonalizationStore, context: Any) -> None:
        self.store = store
        self.context = context
        self.invocations = 0

    def invoke(self, *, FunctionName: str, Payload: bytes) -> dict[str, Any]:
        self.invocations += 1
        handler: Any = task_templates.handler
        try:
            answer = handler(json.loads(Payload), self.context, self.store)
        except Exception as error:  # what Lambda reports as the function's error
            failure = json.dumps({"errorMessage": str(error)}).encode()
            return {"FunctionError": "Unhandled", "Payload": io.BytesIO(failure)}
        return {"Payload": io.BytesIO(json.dumps(answer, default=str).encode())}


class Library:
    def __init__(self, engine: Engine, context: Any) -> None:
        engine.client.create_table(
            TableName=PERSONALIZATION_TABLE,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
        )
        store = PersonalizationStore(engine.client, PERSONALIZATION_TABLE)
        offers = OfferService(store, publisher=None, clock=engine.clock)  # type: ignore[arg-type]  # never publishes
        self.service = TemplateService(store, engine.clock, RecommendationService(store, engine.clock), offers)
        self.function = InProcessLambda(store, context)
        engine.messages.templates = CachedTemplates(LambdaTemplates(self.function, "templates"), engine.clock)

    def save(self, body: dict[str, Any], template_id: str | None = None) -> tuple[str, int]:
        template = parse_template(body)
        saved = (
            self.service.save_version(template_id, template, actor="staff:m")
            if template_id
            else self.service.create(template, actor="staff:m")
        )
        return saved.template_id, saved.version


@pytest.fixture
def library(engine: Engine, lambda_context: Any) -> Library:
    return Library(engine, lambda_context)


def test_a_message_by_template_id_pins_its_version_and_renders_it_for_the_customer(
    engine: Engine, library: Library
) -> None:
    # Given a stored welcome template, version 1, and a customer named Ada
    template_id, _ = library.save(WELCOME)
    engine.contacts.add("c1")
    # When a message names the template without a version
    message_id = engine.request("c1", key="welcome-1", content={"email": {"template_id": template_id}})
    # Then version 1 is pinned on the message and the email says Ada's name
    assert engine.messages.get(message_id).templates["email"].model_dump() == {
        "template_id": template_id,
        "version": 1,
        "locale": "en",
    }
    # And a version 2 saved before the send changes nothing for this message, nor for a retry of its request
    changed = {**WELCOME, "variants": {"en": {"subject": "v2 {{ customer.first_name }}", "html": "<p>v2</p>"}}}
    assert library.save(changed, template_id) == (template_id, 2)
    again = engine.request("c1", key="welcome-1", content={"email": {"template_id": template_id}})
    assert again == message_id
    assert engine.run(message_id) == {message_id: "sent"}
    sent = engine.adapters["email"].sent[0]
    assert (sent.content["subject"], sent.content["html"]) == ("Welcome Ada", "<p>Hello Ada</p>")
    # And the same key with another version named is another body: a 422
    with pytest.raises(KeyReused):
        engine.request("c1", key="welcome-1", content={"email": {"template_id": template_id, "version": 2}})
    # And a new key reaches version 2 once the latest version is asked again (kept 30 seconds), in the variant
    # asked for or the default one
    engine.clock.advance(seconds=31)
    latest = engine.request("c1", key="welcome-2", content={"email": {"template_id": template_id, "locale": "fr-FR"}})
    assert engine.messages.get(latest).templates["email"].version == 2
    assert engine.messages.get(latest).templates["email"].locale == "en"  # version 2 has no French variant


def test_unknown_templates_versions_and_channels_are_422s_and_nothing_is_stored(
    engine: Engine, library: Library, lambda_context: Any
) -> None:
    template_id, _ = library.save(WELCOME)
    deps = api.Deps(engine.messages, engine.centre)
    handler: Any = api.handler
    for content, why in (
        ({"email": {"template_id": "tpl_" + "0" * 26}}, "does not exist"),
        ({"email": {"template_id": template_id, "version": 5}}, "version 5 does not exist"),
        ({"sms": {"template_id": template_id}}, "is a email template, not sms"),
    ):
        body = {"customer_id": "c1", "purpose": "marketing", "content": content}
        response = handler(api_request("POST", "/messages", body=body), lambda_context, deps)
        problem = json.loads(response["body"])
        assert (response["statusCode"], problem["type"].rsplit("/", 1)[1]) == (422, "template-unusable")
        assert why in problem["detail"]
    page = engine.messages.of_customer("c1", limit=10, cursor=None)
    assert (page.items, engine.store.published) == ([], [])


def test_a_campaign_batch_by_template_asks_the_templates_function_once(
    engine: Engine, library: Library, lambda_context: Any
) -> None:
    template_id, _ = library.save(WELCOME)
    requests = [
        {
            "customer_id": f"c{n}",
            "purpose": "marketing",
            "content": {"email": {"template_id": template_id}},
            "source": "campaign:cmp_1",
            "step": "r1.a",
        }
        for n in range(20)
    ]
    handler: Any = task_request_messages.handler
    answer = handler({"requests": requests}, lambda_context, engine.messages)
    assert len(set(answer["message_ids"])) == 20
    assert library.function.invocations == 1
    assert {engine.messages.get(m).templates["email"].version for m in answer["message_ids"]} == {1}


def test_a_template_imported_from_pinpoint_is_sent_by_its_id(engine: Engine, library: Library) -> None:
    # Given a Pinpoint email template translated by `ecrm import pinpoint` and saved in personalization
    pinpoint = {
        "TemplateName": "spring",
        "TemplateType": "EMAIL",
        "Subject": "Spring is here, {{User.UserAttributes.FirstName}}",
        "HtmlPart": "<p>Hi {{User.UserAttributes.FirstName}} from {{Location.City}}</p>",
        "DefaultSubstitutions": json.dumps({"Location.City": "your city"}),
    }
    translated = translate_templates([pinpoint])
    template_id, version = library.save(translated.bodies[0])
    engine.contacts.add("c7")
    # When it is sent by id
    message_id = engine.request("c7", key="spring-1", content={"email": {"template_id": template_id}})
    assert engine.run(message_id) == {message_id: "sent"}
    # Then the customer's name and the Pinpoint default are in it
    sent = engine.adapters["email"].sent[0]
    assert sent.content["subject"] == "Spring is here, Ada"
    assert sent.content["html"] == "<p>Hi Ada from your city</p>"
    assert engine.messages.get(message_id).templates["email"].version == version


def test_the_service_without_a_templates_port_refuses_a_template(engine: Engine) -> None:
    service = MessageService(engine.store, engine.clock)
    body = MessageRequest.model_validate(
        {"customer_id": "c1", "purpose": "marketing", "content": {"email": {"template_id": "tpl_" + "1" * 26}}}
    )
    with pytest.raises(TemplateUnusable, match="not available"):
        service.request(body, idempotency_key="k", correlation_id=None)
