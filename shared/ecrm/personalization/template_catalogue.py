"""The field catalogue: everything a content template may reference, and the context that fills it.

Templates are written by users, so what they can reach is a closed list, not "whatever the
customer record happens to hold": the catalogue is what the save-time check validates names
against, what the editor documents, and the only shape `build_context` produces. The context is
plain dicts, lists and scalars: the sandbox reads dict entries as fields and never hands out a
dict's methods (`ecrm.personalization.template_sandbox`), so there is nothing behind a field to
reach for. Missing data is left out rather than set to None, so it renders as empty or as the
template's `|default(...)`, never as "None".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class Value:
    """A leaf: text, a number, a date or a URL."""

    doc: str
    sample: Any = None


@dataclass(frozen=True)
class Record:
    """A group of named fields (`customer`, `offer`, an item of `recommendations`)."""

    doc: str
    fields: Mapping[str, Value | Record | ListOf] = field(default_factory=dict)


@dataclass(frozen=True)
class ListOf:
    """A list to loop over (`{% for item in recommendations %}`) or index (`recommendations[0]`)."""

    doc: str
    item: Value | Record | ListOf


Kind = Value | Record | ListOf

CUSTOMER = Record(
    "The recipient",
    {
        "id": Value("Customer id", "cus_000000042"),
        "first_name": Value("Given name", "Amélie"),
        "last_name": Value("Family name", "Durand"),
        "email": Value("Primary email address", "amelie.durand@example.com"),
        "city": Value("City", "Lyon"),
        "country": Value("Country (ISO 3166 code)", "FR"),
        "language": Value("Preferred language (BCP 47 tag)", "fr-FR"),
        "tier": Value("Loyalty tier", "gold"),
        "loyalty_points": Value("Loyalty points balance", 1250),
        "loyalty_tier": Value("Loyalty tier, as the loyalty programme last set it", "gold"),
        "loyalty_balance": Value("Loyalty points balance, as the loyalty programme last set it", 1250),
        "loyalty_points_expiring_30d": Value("Loyalty points that expire within 30 days unless spent", 300),
        "loyalty_expiring_by": Value("The day those points expire (ISO 8601 date)", "2026-12-31"),
        "rfm_segment": Value("RFM segment computed by the analysis engine", "champions"),
        "churn_risk": Value("Churn probability between 0 and 1", 0.12),
        "clv": Value("Predicted customer lifetime value, in the brand currency", 842.5),
    },
)
ITEM = Record(
    "A recommended product",
    {
        "id": Value("Item id", "sku-1001"),
        "name": Value("Product name", "Merino wool scarf"),
        "url": Value("Product page", "https://shop.example.com/p/sku-1001"),
        "image_url": Value("Product image", "https://cdn.example.com/sku-1001.jpg"),
        "price": Value("Price (a number: format it with |money)", 49.9),
        "currency": Value("ISO 4217 currency code of the price", "EUR"),
        "category": Value("Category", "Accessories"),
    },
)
OFFER = Record(
    "The next best offer for this customer (absent when there is none: test with {% if offer %})",
    {
        "id": Value("Offer id", "off-spring-20"),
        "name": Value("Offer name", "Spring sale"),
        "description": Value("Offer description", "20% off your next order"),
        "code": Value("Coupon code", "SPRING20"),
        "value": Value("Discount: a number (an amount) or a text such as '20%'", "20%"),
        "expires_at": Value("Expiry date (format it with |date)", "2030-04-30"),
        "url": Value("Landing page", "https://shop.example.com/spring"),
    },
)
BRAND = Record(
    "The sending brand",
    {
        "name": Value("Brand name", "Example Shop"),
        "address": Value("Postal address, for the footer", "1 Example Street, 69001 Lyon, France"),
        "logo_url": Value("Logo image", "https://cdn.example.com/logo.png"),
        "website_url": Value("Website", "https://shop.example.com"),
        "support_email": Value("Support address", "help@example.com"),
        "currency": Value("Default currency of |money (ISO 4217)", "EUR"),
    },
)
CATALOGUE = Record(
    "What a template may reference",
    {
        "customer": CUSTOMER,
        "recommendations": ListOf("Recommended items, best first (may be empty)", ITEM),
        "offer": OFFER,
        "brand": BRAND,
        "unsubscribe_url": Value("One-click unsubscribe link", "https://ecrm.example.com/u/abc123"),
        "view_in_browser_url": Value("Web version of this message", "https://ecrm.example.com/v/abc123"),
        "locale": Value("The locale the message is rendered in (set by the renderer)", "fr-FR"),
    },
)
LOOP = Record(
    "Inside a {% for %} loop",
    {
        "index": Value("1-based position", 1),
        "index0": Value("0-based position", 0),
        "revindex": Value("Items left, counting this one", 1),
        "revindex0": Value("Items left after this one", 0),
        "first": Value("True on the first iteration", True),
        "last": Value("True on the last iteration", False),
        "length": Value("Number of items", 4),
    },
)

LINK_FIELDS = ("unsubscribe_url", "view_in_browser_url")
_SCALARS = (str, int, float, Decimal, date, datetime)  # bool is an int
_SCALAR_CLASSES = frozenset({str, int, float, bool, Decimal, date, datetime})
_EMPTY: Mapping[str, Any] = {}


def build_context(
    customer: Mapping[str, Any],
    recommendations: Sequence[Mapping[str, Any]],
    offer: Mapping[str, Any] | None,
    links: Mapping[str, Any],
    brand: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The render context, holding only catalogue fields with a value.

    `customer` is either a flat dict of the catalogue's names or the customer store's view
    (`profile` values with provenance, `traits`, `preferences.language`, email identities):
    previews pass the real record, campaigns may pass a flattened one.
    """
    context: dict[str, Any] = {
        "customer": _customer_fields(customer),
        "recommendations": [_pick(item, ITEM) for item in recommendations],
        "brand": _pick(brand or _EMPTY, BRAND),
    }
    if offer:
        context["offer"] = _pick(offer, OFFER)
    for name in LINK_FIELDS:
        value = links.get(name)
        if isinstance(value, str) and value:
            context[name] = value
    return context


def _pick(source: Mapping[str, Any], record: Record) -> dict[str, Any]:
    picked = {}
    for name in record.fields:
        value = source.get(name)
        if value.__class__ in _SCALAR_CLASSES:  # the common case, without isinstance's subclass walk
            if value != "":
                picked[name] = value
        elif value is not None and isinstance(value, _SCALARS) and value != "":
            picked[name] = value
    return picked


def _customer_fields(customer: Mapping[str, Any]) -> dict[str, Any]:
    profile = customer.get("profile") or _EMPTY
    traits = customer.get("traits") or _EMPTY
    picked = {}
    for name in CUSTOMER.fields:
        value = customer.get(name)
        if value is None:
            value = profile.get(name)
            if isinstance(value, Mapping):  # the store's {value, source, observed_at}
                value = value.get("value")
            if value is None:
                value = traits.get(name)
        if value is not None and value != "" and isinstance(value, _SCALARS):
            picked[name] = value
    if "id" not in picked and isinstance(customer.get("customer_id"), str):
        picked["id"] = customer["customer_id"]
    if "language" not in picked:
        language = (customer.get("preferences") or _EMPTY).get("language")
        if isinstance(language, str) and language:
            picked["language"] = language
    if "email" not in picked:
        for identity in customer.get("identities") or ():
            if isinstance(identity, Mapping) and identity.get("type") == "email" and identity.get("value"):
                picked["email"] = identity["value"]
                break
    return picked


def sample_context(*, items: int = 4) -> dict[str, Any]:
    """The catalogue's sample values, through `build_context`: what save-time checks render with."""
    customer = {name: spec.sample for name, spec in _values(CUSTOMER).items()}
    recommendations = []
    for n in range(items):
        item = {name: spec.sample for name, spec in _values(ITEM).items()}
        item.update(id=f"sku-{1001 + n}", name=f"{item['name']} {n + 1}", price=round(49.9 + 10 * n, 2))
        recommendations.append(item)
    offer = {name: spec.sample for name, spec in _values(OFFER).items()}
    brand = {name: spec.sample for name, spec in _values(BRAND).items()}
    links = {name: _values(CATALOGUE)[name].sample for name in LINK_FIELDS}
    return build_context(customer, recommendations, offer, links, brand)


def empty_context() -> dict[str, Any]:
    """A customer we know nothing about: every field missing, no recommendation, no offer, no links."""
    return build_context({}, [], None, {})


def _values(record: Record) -> dict[str, Value]:
    return {name: spec for name, spec in record.fields.items() if isinstance(spec, Value)}


def describe_catalogue() -> dict[str, Any]:
    """The catalogue as JSON for the template editor: field paths with their meaning and a sample."""

    def describe(kind: Kind) -> dict[str, Any]:
        if isinstance(kind, Value):
            return {"type": "value", "doc": kind.doc, "sample": kind.sample}
        if isinstance(kind, ListOf):
            return {"type": "list", "doc": kind.doc, "item": describe(kind.item)}
        return {"type": "record", "doc": kind.doc, "fields": {k: describe(v) for k, v in kind.fields.items()}}

    return {"variables": describe(CATALOGUE)["fields"], "loop": describe(LOOP)["fields"]}
