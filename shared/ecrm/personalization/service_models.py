"""The personalization API's bodies beyond the offer and template contracts (`offers`, `content_models`).

Owns the item catalogue the business filters read (`PUT /items`), the recommendation lists, how templates are
stored and previewed, offer acceptances and the customer's own view of their offers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, ConfigDict, Field, StringConstraints, field_validator

from ecrm.core.contract import Contract
from ecrm.core.values import FiniteFloat
from ecrm.personalization.content_models import LocaleTag, TemplateReport
from ecrm.personalization.offers import Offer, OfferChannel

STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)
CUSTOMER_ID_PATTERN = r"^cus_[0-9A-Z]{26}$"
ITEM_ID_PATTERN = r"^[A-Za-z0-9_\-:.]{1,128}$"

ItemId = Annotated[str, StringConstraints(pattern=ITEM_ID_PATTERN)]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$")]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=300)]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
Slot = Literal["for_you", "bought_together", "similar"]
Strategy = Literal["personal", "popular", "item", "none"]


# -- the item catalogue ---------------------------------------------------------------------------------
class CatalogueItem(Contract):
    """An item as recommendations filter and show it: where it is sold, whether it is in stock, its category."""

    model_config = STRICT

    item_id: ItemId
    name: ShortText | None = None
    category: Annotated[str, StringConstraints(min_length=1, max_length=120)] | None = Field(
        default=None, description="Lists hold at most a few items of one category"
    )
    in_stock: bool = True
    countries: list[CountryCode] = Field(
        default_factory=list, max_length=250, description="Where it is sold (ISO 3166-1 alpha-2); empty: everywhere"
    )
    url: Url | None = None
    image_url: Url | None = None
    price: FiniteFloat | None = Field(default=None, ge=0)
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None

    @field_validator("countries")
    @classmethod
    def _upper(cls, countries: list[str]) -> list[str]:
        return sorted({c.upper() for c in countries})

    def sold_in(self, country: str | None) -> bool:
        """Sold everywhere, or in the customer's country; a customer of unknown country is not filtered."""
        return not self.countries or country is None or country.upper() in self.countries


class CatalogueBatch(Contract):
    """`PUT /items`: up to 100 items, each replacing what was known of it."""

    model_config = STRICT

    items: list[CatalogueItem] = Field(min_length=1, max_length=100)

    @field_validator("items")
    @classmethod
    def _unique(cls, items: list[CatalogueItem]) -> list[CatalogueItem]:
        ids = [i.item_id for i in items]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"items appear twice: {repeated}")
        return items


class CatalogueUpserted(Contract):
    upserted: int


# -- recommendations ----------------------------------------------------------------------------------------
class RecommendedItem(Contract):
    item_id: str
    name: str | None = None
    category: str | None = None
    url: str | None = None
    image_url: str | None = None
    price: float | None = None
    currency: str | None = None

    def template_fields(self) -> dict[str, Any]:
        """The item as the template catalogue names it (`recommendations[i].id`, `.name`, ...)."""
        fields = self.model_dump(exclude={"item_id"}, exclude_none=True)
        return {"id": self.item_id, **fields}


class Recommendations(Contract):
    customer_id: str
    slot: Slot
    item_id: str | None = Field(default=None, description="The item the list is about (similar, bought together)")
    model_version: str | None = Field(description="The recommender version that served the list; None: no model")
    strategy: Strategy = Field(
        description="personal: from the customer's history; popular: bestsellers; item: from the item's neighbours"
    )
    note: str = Field(description="Why this strategy (e.g. no profiling consent)")
    items: list[RecommendedItem]


# -- templates ----------------------------------------------------------------------------------------------
class TemplateSaved(Contract):
    """What `POST /templates` answers: the stored version and the save-time report (sample renders)."""

    template_id: str
    version: int
    name: str
    channel: str
    created_at: datetime
    created_by: str
    report: TemplateReport


class StoredTemplate(Contract):
    template_id: str
    version: int
    latest_version: int
    name: str
    channel: str
    created_at: datetime
    created_by: str
    template: dict[str, Any] = Field(description="The template as it was saved")


class PreviewRequest(Contract):
    """`POST /templates/{id}/preview`: render for a real customer, with their recommendations and best offer."""

    model_config = STRICT

    customer_id: Annotated[str, StringConstraints(pattern=CUSTOMER_ID_PATTERN)]
    locale: LocaleTag | None = Field(default=None, description="Default: the customer's language")
    version: int | None = Field(default=None, ge=1, description="Default: the latest version")
    recommendations: int = Field(default=4, ge=0, le=20, description="How many recommended items to render with")


# -- offers -----------------------------------------------------------------------------------------------------
class OfferList(Contract):
    items: list[Offer]


class CustomerOffer(Contract):
    """An offer as its customer sees it: no targeting rules, counters or scores."""

    offer_id: str
    name: str
    description: str
    code: str | None
    category: str | None
    valid_until: datetime | None


class CustomerOffers(Contract):
    items: list[CustomerOffer]


class AcceptanceIn(Contract):
    """A customer took an offer up: counted once per `acceptance_id` against the cap and the budget."""

    model_config = STRICT

    customer_id: Annotated[str, StringConstraints(pattern=CUSTOMER_ID_PATTERN)]
    acceptance_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-:.]{1,128}$")] = Field(
        description="The business key (order id, redemption id): a repeated request counts once"
    )
    channel: OfferChannel | None = Field(default=None, description="Where the offer had been presented, if known")
    code: Annotated[str, StringConstraints(max_length=64)] | None = None
    accepted_at: AwareDatetime | None = Field(default=None, description="Default: now")


class Acceptance(Contract):
    offer_id: str
    customer_id: str
    acceptance_id: str
    accepted_at: datetime
    counted: bool = Field(description="False: this acceptance_id had already been counted")
    cost: float
    exhausted: bool = Field(description="True: this acceptance used the offer's last budget")
