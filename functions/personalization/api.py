"""REST API of the personalization engine: recommendations, offers and next best offer, templates, item catalogue.

Staff read recommendations and offers for any customer; marketers (and admins) manage offers, templates and the
item catalogue; a signed-in customer reads their own recommendations and offers under `/me`, with the customer
id taken from the token. Nothing here imports numpy: requests read precomputed lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm import __version__
from ecrm.core.api import EngineApi
from ecrm.core.auth import Access
from ecrm.core.config import load_config
from ecrm.core.contract import Contract
from ecrm.core.observability import Observability
from ecrm.personalization.content import RenderedMessage, Template
from ecrm.personalization.offer_service import OfferService
from ecrm.personalization.offers import NextBestOffer, Offer, OfferChannel, OfferIn
from ecrm.personalization.recommendation_service import MAX_K, RecommendationService
from ecrm.personalization.service_models import (
    CUSTOMER_ID_PATTERN,
    ITEM_ID_PATTERN,
    Acceptance,
    AcceptanceIn,
    CatalogueBatch,
    CatalogueUpserted,
    CustomerOffers,
    OfferList,
    PreviewRequest,
    Recommendations,
    Slot,
    StoredTemplate,
    TemplateSaved,
)
from ecrm.personalization.template_service import TemplateService
from ecrm.personalization.wiring import PersonalizationConfig, services_for
from pydantic import ConfigDict, Field

config = load_config(PersonalizationConfig)
obs = Observability(config)
app = EngineApi(obs.logger, title="eCRM personalization API", version=__version__)

CustomerId = Annotated[str, Path(pattern=CUSTOMER_ID_PATTERN, description="A customer id")]
OfferId = Annotated[str, Path(pattern=r"^off_[0-9A-Z]{26}$", description="An offer id")]
TemplateId = Annotated[str, Path(pattern=r"^tpl_[0-9A-Z]{26}$", description="A template id")]
ListLength = Annotated[int, Query(ge=1, le=MAX_K, description="How many items")]
AboutItem = Annotated[
    str | None, Query(pattern=ITEM_ID_PATTERN, description="The item a similar or bought_together list is about")
]
EDITORS = ("admin", "marketer")
OFFER_DESK = ("admin", "marketer", "agent")


@dataclass(frozen=True)
class Deps:
    recommendations: RecommendationService
    offers: OfferService
    templates: TemplateService


@cache
def default_deps() -> Deps:
    services = services_for(config)
    return Deps(services.recommendations, services.offers, services.templates)


def deps() -> Deps:
    return app.context["deps"]


# -- recommendations ----------------------------------------------------------------------------------------
@app.get(
    "/customers/<customer_id>/recommendations",
    access=Access.staff(),
    summary="Recommended items for a customer, in a slot",
)
def get_recommendations(
    customer_id: CustomerId,
    slot: Annotated[Slot, Query(description="for_you, similar (to item) or bought_together (with item)")] = "for_you",
    item: AboutItem = None,
    k: ListLength = 10,
) -> Recommendations:
    return deps().recommendations.recommend(customer_id, slot=slot, item=item, k=k)


@app.get("/me/recommendations", access=Access.customer(), summary="My recommended items")
def get_my_recommendations(
    k: ListLength = 10,
    slot: Annotated[Slot, Query()] = "for_you",
    item: AboutItem = None,
) -> Recommendations:
    return deps().recommendations.recommend(app.customer_id(), slot=slot, item=item, k=k)


@app.put(
    "/items",
    access=Access.staff(*EDITORS),
    summary="Add or replace up to 100 items of the catalogue recommendations filter by",
)
def put_items(body: CatalogueBatch) -> CatalogueUpserted:
    return CatalogueUpserted(upserted=deps().recommendations.upsert_items(body.items))


# -- offers ---------------------------------------------------------------------------------------------------
@app.post("/offers", access=Access.staff(*EDITORS), summary="Create an offer (201)", status_code=201)
def create_offer(body: OfferIn) -> tuple[Offer, int]:
    return deps().offers.create(body, correlation_id=app.correlation_id), 201


@app.get("/offers", access=Access.staff(), summary="Every offer with its counters")
def list_offers() -> OfferList:
    return OfferList(items=deps().offers.all())


@app.get("/offers/<offer_id>", access=Access.staff(), summary="An offer with its counters")
def get_offer(offer_id: OfferId) -> Offer:
    return deps().offers.get(offer_id)


@app.post(
    "/offers/<offer_id>/acceptances",
    access=Access.staff(*OFFER_DESK),
    summary="Record that a customer took the offer up (201; 200 if known)",
    responses={201: {"description": "Counted"}, 200: {"description": "Already known"}},
)
def accept_offer(offer_id: OfferId, body: AcceptanceIn) -> tuple[Acceptance, int]:
    acceptance = deps().offers.accept(offer_id, body, correlation_id=app.correlation_id)
    return acceptance, 201 if acceptance.counted else 200


@app.get(
    "/customers/<customer_id>/next-best-offer",
    access=Access.staff(),
    summary="The offer a channel would show now: a look, which counts nothing and keeps no decision",
)
def get_next_best_offer(
    customer_id: CustomerId,
    channel: Annotated[OfferChannel, Query(description="The channel about to show the offer")],
) -> NextBestOffer:
    return deps().offers.next_best(customer_id, channel, present=False, correlation_id=app.correlation_id)


class Presentation(Contract):
    """`POST /customers/{id}/next-best-offer`: a channel is showing the customer their next best offer now."""

    model_config = ConfigDict(extra="forbid")

    channel: OfferChannel = Field(description="The channel showing it")


@app.post(
    "/customers/<customer_id>/next-best-offer",
    access=Access.staff(*OFFER_DESK),
    summary="Present the next best offer on a channel: counted as presented, the decision kept 24 h for every channel",
)
def present_next_best_offer(customer_id: CustomerId, body: Presentation) -> NextBestOffer:
    return deps().offers.next_best(customer_id, body.channel, present=True, correlation_id=app.correlation_id)


@app.get("/me/offers", access=Access.customer(), summary="Offers I can take up now, best first")
def get_my_offers() -> CustomerOffers:
    return deps().offers.for_customer(app.customer_id())


# -- templates ------------------------------------------------------------------------------------------------
@app.post(
    "/templates",
    access=Access.staff(*EDITORS),
    summary="Save a new template, validated now: a problem list with lines if it cannot (201)",
    status_code=201,
)
def create_template(body: Annotated[Template, Body()]) -> tuple[TemplateSaved, int]:
    return deps().templates.create(body, actor=app.principal().actor), 201


@app.put(
    "/templates/<template_id>",
    access=Access.staff(*EDITORS),
    summary="Save a new version of a template (201)",
    status_code=201,
)
def save_template_version(template_id: TemplateId, body: Annotated[Template, Body()]) -> tuple[TemplateSaved, int]:
    return deps().templates.save_version(template_id, body, actor=app.principal().actor), 201


@app.get("/templates/<template_id>", access=Access.staff(), summary="A template: the latest version, or ?version=")
def get_template(
    template_id: TemplateId, version: Annotated[int | None, Query(ge=1, description="Default: the latest")] = None
) -> StoredTemplate:
    return deps().templates.get(template_id, version)


@app.post(
    "/templates/<template_id>/preview",
    access=Access.staff(),
    summary="Render a template for a customer, with their data",
)
def preview_template(template_id: TemplateId, body: PreviewRequest) -> RenderedMessage:
    return deps().templates.preview(template_id, body)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: Deps | None = None) -> dict[str, Any]:
    app.append_context(deps=injected or default_deps())
    return app.resolve(event, context)
