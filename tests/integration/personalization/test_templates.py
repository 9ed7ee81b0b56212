"""Templates on moto: validated at save time, versioned, previewed with a customer's data."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from ecrm.core.errors import Conflict, NotFound
from ecrm.personalization.content import TemplateRejected, parse_template
from ecrm.personalization.customer_events import ProjectionService
from ecrm.personalization.offer_service import OfferService
from ecrm.personalization.offers import OfferIn
from ecrm.personalization.recommendation_service import RecommendationService
from ecrm.personalization.service_models import CatalogueItem, PreviewRequest
from ecrm.personalization.store import PersonalizationStore
from ecrm.personalization.template_service import TemplateService

from tests.integration.personalization.conftest import NOW, created, customer_id, interaction, traits, write_model

EMAIL: dict[str, Any] = {
    "name": "Weekly picks",
    "channel": "email",
    "default_locale": "en",
    "variants": {
        "en": {
            "subject": "Picks for {{ customer.tier | default('you') }}",
            "html": "<p>{% for item in recommendations %}{{ item.name | default(item.id) }};{% endfor %}</p>"
            "{% if offer %}<p>{{ offer.name }} {{ offer.code }}</p>{% endif %}",
        },
        "fr": {"subject": "Pour vous", "html": "<p>{{ customer.country }}</p>"},
    },
}


def test_a_template_is_saved_with_its_report_and_read_back(templates: TemplateService) -> None:
    saved = templates.create(parse_template(EMAIL), actor="marketer@example.com")

    assert (saved.version, saved.channel, saved.created_by) == (1, "email", "marketer@example.com")
    assert saved.report.variants[0].sample["subject"].startswith("Picks for")
    stored = templates.get(saved.template_id)
    assert stored.latest_version == 1
    assert parse_template(stored.template) == parse_template(EMAIL)


def test_a_broken_template_is_refused_with_each_problem_and_nothing_is_stored(
    templates: TemplateService, store: PersonalizationStore
) -> None:
    broken = {**EMAIL, "variants": {"en": {"subject": "{{ customer.secret }}", "html": "<p>{% if %}</p>"}}}

    with pytest.raises(TemplateRejected) as rejected:
        templates.create(parse_template(broken), actor="marketer@example.com")

    problems = rejected.value.problems
    assert {p.part for p in problems} == {"subject", "html"}
    assert all(p.line == 1 for p in problems)
    assert rejected.value.status == 400


def test_versions_follow_one_another(templates: TemplateService, store: PersonalizationStore) -> None:
    saved = templates.create(parse_template(EMAIL), actor="a")
    second = templates.save_version(saved.template_id, parse_template({**EMAIL, "name": "Renamed"}), actor="b")

    assert second.version == 2
    assert templates.get(saved.template_id).name == "Renamed"
    assert templates.get(saved.template_id, 1).name == "Weekly picks"
    with pytest.raises(NotFound):
        templates.get(saved.template_id, 3)
    with pytest.raises(NotFound):
        templates.save_version("tpl_01JD3Z6Q5N8V4W7X2Y9A0B1C2D", parse_template(EMAIL), actor="a")
    # a save that raced another for the same version loses and says so
    with pytest.raises(Conflict):
        store.put_template_version(
            saved.template_id, 2, name="x", channel="email", body=EMAIL, created_at=NOW, created_by="c"
        )


def test_a_preview_renders_the_customers_data_recommendations_and_best_offer(
    templates: TemplateService,
    recommendations: RecommendationService,
    offers: OfferService,
    projections: ProjectionService,
    store: PersonalizationStore,
) -> None:
    # Given a customer with a tier, a history, an email consent, a model, a catalogue and an offer
    write_model(store)
    recommendations.upsert_items([CatalogueItem(item_id="s2", name="Runner", category="shoes")])
    customer = customer_id()
    projections.apply(created(customer, consents={"email:marketing": "granted"}, country="FR", tier="gold"))
    projections.apply(interaction(customer, "s1", at=NOW - timedelta(hours=2)))
    projections.apply(traits(customer, rfm_segment="champions"))
    offer = offers.create(
        OfferIn.model_validate(
            {
                "name": "Gold week",
                "code": "GOLD",
                "channels": ["email"],
                "valid_from": NOW - timedelta(days=1),
                "value": 5,
            }
        )
    )
    saved = templates.create(parse_template(EMAIL), actor="a")

    # When
    rendered = templates.preview(saved.template_id, PreviewRequest(customer_id=customer, recommendations=2))

    # Then
    assert rendered.locale == "en"
    assert rendered.parts["subject"] == "Picks for gold"
    assert "Runner;s3;" in rendered.parts["html"]
    assert "Gold week GOLD" in rendered.parts["html"]
    # a preview is a look: it presented nothing and fixed no decision
    assert offers.get(offer.offer_id).counters.presented == 0
    assert store.load_customer(customer).decision is None
    # and another locale renders its variant
    french = templates.preview(saved.template_id, PreviewRequest(customer_id=customer, locale="fr-FR"))
    assert (french.locale, french.parts["html"].strip()) == ("fr", "<p>FR</p>")
