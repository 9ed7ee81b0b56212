"""Templates in use: saving versions (validated at save time), reading them, previewing one for a real customer.

`content` validates and renders; this service stores what passed and assembles a preview's data: the customer
as personalization knows them (the published profile attributes and computed traits of the projection), their
"for you" recommendations with catalogue details, and the next best offer on the template's channel, looked at
without side effects (a preview presents nothing and fixes no decision). A webhook template has no offer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

from ecrm.core.clock import Clock
from ecrm.core.errors import NotFound
from ecrm.core.ids import new_id
from ecrm.core.vocabulary import MessageChannel
from ecrm.personalization.content import RenderedMessage, Template, compile_template, parse_template, preview
from ecrm.personalization.offer_service import OfferService
from ecrm.personalization.offers import Offer, OfferChannel
from ecrm.personalization.projection import CustomerProjection
from ecrm.personalization.recommendation_service import RecommendationService
from ecrm.personalization.service_models import PreviewRequest, StoredTemplate, TemplateSaved
from ecrm.personalization.store import PersonalizationStore

OFFER_CHANNEL_OF: dict[str, OfferChannel] = {channel: channel for channel in get_args(MessageChannel)}


@dataclass
class TemplateService:
    store: PersonalizationStore
    clock: Clock
    recommendations: RecommendationService
    offers: OfferService

    def create(self, template: Template, *, actor: str) -> TemplateSaved:
        """A new template, version 1; `TemplateRejected` (every problem with its line) if it does not compile."""
        return self._save(new_id("tpl_"), 1, template, actor)

    def save_version(self, template_id: str, template: Template, *, actor: str) -> TemplateSaved:
        latest = self.store.latest_template_version(template_id)
        if latest is None:
            raise NotFound(f"template {template_id} does not exist")
        return self._save(template_id, latest + 1, template, actor)

    def get(self, template_id: str, version: int | None = None) -> StoredTemplate:
        stored = self.store.template(template_id, version)
        if stored is None:
            which = f"version {version} of template {template_id}" if version else f"template {template_id}"
            raise NotFound(f"{which} does not exist")
        return stored

    def preview(self, template_id: str, request: PreviewRequest) -> RenderedMessage:
        stored = self.get(template_id, request.version)
        compiled = compile_template(parse_template(stored.template))
        record = self.store.load_customer(request.customer_id)
        projection = record.projection or CustomerProjection(customer_id=request.customer_id)
        items: list[dict[str, Any]] = []
        if request.recommendations:
            listed = self.recommendations.recommend(request.customer_id, k=request.recommendations, record=record)
            items = [item.template_fields() for item in listed.items]
        offer = None
        channel = OFFER_CHANNEL_OF.get(stored.channel)
        if channel is not None:
            best = self.offers.next_best(request.customer_id, channel, present=False, record=record)
            if best.offer is not None:
                offer = _offer_fields(self.offers.get(best.offer.offer_id))
        return preview(compiled, projection.template_customer(), items, offer, locale=request.locale)

    def _save(self, template_id: str, version: int, template: Template, actor: str) -> TemplateSaved:
        compiled = compile_template(template)
        now = self.clock.now()
        self.store.put_template_version(
            template_id,
            version,
            name=template.name,
            channel=template.channel,
            body=template.model_dump(mode="json"),
            created_at=now,
            created_by=actor,
        )
        return TemplateSaved(
            template_id=template_id,
            version=version,
            name=template.name,
            channel=template.channel,
            created_at=now,
            created_by=actor,
            report=compiled.report,
        )


def _offer_fields(offer: Offer) -> dict[str, Any]:
    """The offer as the template catalogue names it; its business value is not the customer's discount."""
    fields: dict[str, Any] = {"id": offer.offer_id, "name": offer.name, "description": offer.description}
    if offer.code:
        fields["code"] = offer.code
    if offer.valid_until is not None:
        fields["expires_at"] = offer.valid_until.date().isoformat()
    return fields
