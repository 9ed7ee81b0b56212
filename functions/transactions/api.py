"""REST API of the transactions engine: orders, returns and the loyalty programme.

Staff at the desk (admins, agents) place orders and move them through their statuses; every staff group
reads them. A signed-in customer reads their own orders and loyalty account under `/me` and redeems points
there. Admins and marketers set the loyalty rules. `POST /orders` takes an `Idempotency-Key` header: the
first request answers 201, a replay with the same key and body 200 with the same order, another body 422.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm import __version__
from ecrm.core.api import EngineApi
from ecrm.core.auth import Access
from ecrm.core.config import load_config
from ecrm.core.errors import ConfigurationError
from ecrm.core.observability import Observability
from ecrm.transactions.catalog import (
    PRODUCT_ID_PATTERN,
    ComparePreferences,
    ComparePreferencesIn,
    Comparison,
    Offer,
    OfferIn,
    Product,
    ProductIn,
    ProductWithOffers,
    SearchResult,
)
from ecrm.transactions.catalog_service import CatalogService
from ecrm.transactions.loyalty_service import LoyaltyService
from ecrm.transactions.models import (
    CUSTOMER_ID_PATTERN,
    ORDER_ID_PATTERN,
    PURCHASE_ID_PATTERN,
    VENDOR_ID_PATTERN,
    LoyaltyAccount,
    LoyaltyRules,
    LoyaltyRulesIn,
    Order,
    OrderIn,
    OrderList,
    Purchase,
    PurchaseIn,
    Redemption,
    RedemptionIn,
    ReturnIn,
    StatusChangeIn,
    Vendor,
    VendorCallbackReceipt,
    VendorIn,
)
from ecrm.transactions.order_service import OrderService
from ecrm.transactions.purchase_service import PurchaseService
from ecrm.transactions.purchase_wiring import PurchaseConfig, purchase_service_for
from ecrm.transactions.wiring import TransactionsConfig, catalog_service_for, loyalty_service_for, order_service_for

config = load_config(TransactionsConfig)
purchase_config = load_config(PurchaseConfig)
obs = Observability(config)
app = EngineApi(obs.logger, title="eCRM transactions API", version=__version__)

CustomerId = Annotated[str, Path(pattern=CUSTOMER_ID_PATTERN, description="A customer id")]
OrderId = Annotated[str, Path(pattern=ORDER_ID_PATTERN, description="An order id")]
Limit = Annotated[int, Query(ge=1, le=100, description="How many orders, newest first")]
IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="A unique value per new order; a retry sends the same one",
    ),
]
OptionalIdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", max_length=255, description="A retry with the same value redeems once"),
]
ReturnIdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", max_length=255, description="A retry with the same value returns once"),
]
ORDER_DESK = ("admin", "agent")
PurchaseIdPath = Annotated[str, Path(pattern=PURCHASE_ID_PATTERN, description="A purchase id")]
VendorIdPath = Annotated[str, Path(pattern=VENDOR_ID_PATTERN, description="A vendor id")]
VendorSignature = Annotated[
    str | None,
    Header(
        alias="X-Ecrm-Signature",
        max_length=1000,
        description='t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the vendor\'s secret>',
    ),
]
VENDOR_CALLBACKS = Access.public(
    "a vendor's callback is authenticated by its HMAC-SHA256 signature, checked in the handler"
)
MAX_CALLBACK_BYTES = 16_384
PROGRAMME = ("admin", "marketer")
ProductIdPath = Annotated[str, Path(pattern=PRODUCT_ID_PATTERN, description="A product id")]
ProductIdQuery = Annotated[str | None, Query(pattern=PRODUCT_ID_PATTERN, description="A product id")]
SearchText = Annotated[str, Query(min_length=1, max_length=200, description="What is needed, in words")]
OptionalSearchText = Annotated[str | None, Query(min_length=1, max_length=200, description="What I need, in words")]
SearchLimit = Annotated[int, Query(ge=1, le=50, description="How many products, best first")]


@dataclass(frozen=True)
class Deps:
    orders: OrderService
    loyalty: LoyaltyService
    purchases: PurchaseService | None = None
    catalog: CatalogService | None = None


@cache
def default_deps() -> Deps:
    return Deps(
        order_service_for(config),
        loyalty_service_for(config),
        purchases=purchase_service_for(purchase_config),
        catalog=catalog_service_for(config),
    )


def deps() -> Deps:
    return app.context["deps"]


# -- orders ---------------------------------------------------------------------------------------------------
@app.post(
    "/orders",
    access=Access.staff(*ORDER_DESK),
    summary="Place an order (201); a replay of its Idempotency-Key answers 200 with the same order",
    responses={
        201: {"description": "Placed"},
        200: {"description": "Placed before with this key and body"},
        422: {"description": "The key was used with another body"},
    },
)
def place_order(body: OrderIn, idempotency_key: IdempotencyKey) -> tuple[Order, int]:
    placement = deps().orders.place(
        body, idempotency_key=idempotency_key, caller=app.principal().actor, correlation_id=app.correlation_id
    )
    return placement.order, 201 if placement.created else 200


@app.get("/orders/<order_id>", access=Access.staff(), summary="An order with its lines, returns and refunds")
def get_order(order_id: OrderId) -> Order:
    return deps().orders.get(order_id)


@app.post(
    "/orders/<order_id>/status",
    access=Access.staff(*ORDER_DESK),
    summary="Move an order: placed -> paid -> shipped -> delivered, or cancelled before shipping (409 otherwise)",
)
def change_order_status(order_id: OrderId, body: StatusChangeIn) -> Order:
    return deps().orders.change_status(order_id, body, correlation_id=app.correlation_id)


@app.post(
    "/orders/<order_id>/returns",
    access=Access.staff(*ORDER_DESK),
    summary="Take back units of a shipped or delivered order, refunded at their price (201; 200 for a replayed key)",
    responses={201: {"description": "Returned"}, 200: {"description": "Returned before with this key"}},
)
def return_order_lines(
    order_id: OrderId, body: ReturnIn, idempotency_key: ReturnIdempotencyKey = None
) -> tuple[Order, int]:
    order, created = deps().orders.take_return(
        order_id, body, idempotency_key=idempotency_key, correlation_id=app.correlation_id
    )
    return order, 201 if created else 200


@app.get("/customers/<customer_id>/orders", access=Access.staff(), summary="A customer's orders, newest first")
def get_customer_orders(customer_id: CustomerId, limit: Limit = 50) -> OrderList:
    return OrderList(items=deps().orders.for_customer(customer_id, limit))


@app.get("/me/orders", access=Access.customer(), summary="My orders, newest first")
def get_my_orders(limit: Limit = 50) -> OrderList:
    return OrderList(items=deps().orders.for_customer(app.customer_id(), limit))


# -- loyalty --------------------------------------------------------------------------------------------------
@app.get(
    "/me/loyalty",
    access=Access.customer(),
    summary="My points: balance, tier, what expires in the next 30 days, and the statement",
)
def get_my_loyalty() -> LoyaltyAccount:
    return deps().loyalty.account(app.customer_id())


@app.post(
    "/me/loyalty/redeem",
    access=Access.customer(),
    summary="Redeem points for a discount code (201); 409 when the balance holds fewer",
    responses={201: {"description": "Redeemed"}, 200: {"description": "Redeemed before with this key"}},
)
def redeem_points(body: RedemptionIn, idempotency_key: OptionalIdempotencyKey = None) -> tuple[Redemption, int]:
    redemption, created = deps().loyalty.redeem(
        app.customer_id(), body, idempotency_key=idempotency_key, correlation_id=app.correlation_id
    )
    return redemption, 201 if created else 200


@app.get("/customers/<customer_id>/loyalty", access=Access.staff(), summary="A customer's loyalty account")
def get_customer_loyalty(customer_id: CustomerId) -> LoyaltyAccount:
    return deps().loyalty.account(customer_id)


@app.get("/loyalty/rules", access=Access.staff(), summary="The loyalty programme's rules")
def get_loyalty_rules() -> LoyaltyRules:
    return deps().loyalty.rules()


@app.post(
    "/loyalty/rules",
    access=Access.staff(*PROGRAMME),
    summary="Replace the loyalty rules from now on (201); points already earned keep their expiry",
    status_code=201,
)
def set_loyalty_rules(body: LoyaltyRulesIn) -> tuple[LoyaltyRules, int]:
    return deps().loyalty.set_rules(body, actor=app.principal().actor), 201


# -- brokered purchases ---------------------------------------------------------------------------------------
def purchases() -> PurchaseService:
    service = deps().purchases
    if service is None:
        raise ConfigurationError("this function was built without the purchase service")
    return service


@app.post(
    "/me/purchases",
    access=Access.customer(),
    summary="Buy a product from a vendor of a comparison (202: brokered in the background; follow its status)",
    description="Problems (application/problem+json): 404 when the vendor has no offer for the product; 409 when it "
    "is out of stock or the vendor takes no brokered purchases; 422 when the key was used with another body.",
    responses={
        202: {"description": "Accepted: reserving, paying, awaiting the vendor's confirmation"},
        200: {"description": "Requested before with this key and body"},
    },
)
def request_purchase(body: PurchaseIn, idempotency_key: IdempotencyKey) -> tuple[Purchase, int]:
    purchase, created = purchases().request(app.customer_id(), body, idempotency_key=idempotency_key)
    return purchase, 202 if created else 200


@app.get(
    "/me/purchases/<purchase_id>",
    access=Access.customer(),
    summary="My brokered purchase: where it is, the order it became, or why it failed and what was undone",
)
def get_my_purchase(purchase_id: PurchaseIdPath) -> Purchase:
    return purchases().get_for_customer(app.customer_id(), purchase_id)


@app.put(
    "/vendors/<vendor_id>",
    access=Access.staff("admin"),
    summary="Register a vendor for brokered purchases: its HTTPS endpoint and signing secret (never returned)",
)
def register_vendor(vendor_id: VendorIdPath, body: VendorIn) -> Vendor:
    return purchases().register_vendor(vendor_id, body)


@app.post(
    "/vendors/<vendor_id>/callbacks",
    access=VENDOR_CALLBACKS,
    summary="A vendor confirms or refuses a purchase (signed: a missing, stale or wrong signature is a 401 problem; "
    "a replay changes nothing)",
    description="404 when the vendor has no such purchase; 409 when the purchase no longer awaits an answer "
    "(the wait timed out and it is being compensated, or it was answered the other way).",
    responses={200: {"description": "Taken, or a replay of an answer taken before (`replayed`)"}},
)
def vendor_callback(vendor_id: VendorIdPath, signature: VendorSignature = None) -> VendorCallbackReceipt:
    return purchases().vendor_callback(vendor_id, app.body_bytes(limit=MAX_CALLBACK_BYTES), signature)


# -- catalogue and comparison -----------------------------------------------------------------------------------
def catalog() -> CatalogService:
    service = deps().catalog
    if service is None:
        raise ConfigurationError("the catalogue service is not wired into this function")
    return service


@app.post(
    "/catalog/products",
    access=Access.staff(*PROGRAMME),
    summary="Add a product (201), or replace the one with its product_id (200), keeping its offers",
    responses={201: {"description": "Added"}, 200: {"description": "Replaced"}},
)
def save_product(body: ProductIn) -> tuple[Product, int]:
    product, created = catalog().save_product(body)
    return product, 201 if created else 200


@app.get("/catalog/products/<product_id>", access=Access.staff(), summary="A product with every vendor's offer for it")
def get_product(product_id: ProductIdPath) -> ProductWithOffers:
    return catalog().product(product_id)


@app.post(
    "/catalog/products/<product_id>/offers",
    access=Access.staff(*PROGRAMME),
    summary="A vendor's offer for the product (201), replacing that vendor's last one (200)",
    description="409 (application/problem+json) when another offer already holds the sku.",
    responses={201: {"description": "Added"}, 200: {"description": "Replaced"}},
)
def save_offer(product_id: ProductIdPath, body: OfferIn) -> tuple[Offer, int]:
    offer, created = catalog().save_offer(product_id, body)
    return offer, 201 if created else 200


@app.get("/catalog/search", access=Access.staff(), summary="Products matching a need in words, best first")
def search_catalog(q: SearchText, limit: SearchLimit = 10) -> SearchResult:
    return catalog().search(q, limit)


@app.get("/me/catalog/search", access=Access.customer(), summary="Products matching what I need, best first")
def search_catalog_as_customer(q: SearchText, limit: SearchLimit = 10) -> SearchResult:
    return catalog().search(q, limit)


@app.get(
    "/me/compare",
    access=Access.customer(),
    summary="Every vendor's offer for a product (product=) or for what I need (q=), ranked by what I value, "
    "each rank with its reasons, with my recommendations beside them",
    responses={200: {"description": "The comparison", "content": {"application/json": {"model": Comparison}}}},
)
def compare_offers(product: ProductIdQuery = None, q: OptionalSearchText = None) -> Response[str]:
    """Serialized by the model itself in one pass: the route's answer is 50 offers with their reasons, and
    the resolver's generic serialization of it was a third of the request's own time."""
    comparison = catalog().compare(app.customer_id(), product_id=product, query=q)
    return Response(status_code=200, content_type="application/json", body=comparison.model_dump_json())


@app.get("/me/compare/preferences", access=Access.customer(), summary="What I said I value when comparing offers")
def get_compare_preferences() -> ComparePreferences:
    return catalog().preferences(app.customer_id())


@app.put(
    "/me/compare/preferences",
    access=Access.customer(),
    summary="Say what I value when comparing offers: price, speed or balanced, favourite vendors, a currency",
)
def set_compare_preferences(body: ComparePreferencesIn) -> ComparePreferences:
    return catalog().set_preferences(app.customer_id(), body)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: Deps | None = None) -> dict[str, Any]:
    app.append_context(deps=injected or default_deps())
    return app.resolve(event, context)
