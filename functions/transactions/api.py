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

from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm import __version__
from ecrm.core.api import EngineApi
from ecrm.core.auth import Access
from ecrm.core.config import load_config
from ecrm.core.observability import Observability
from ecrm.transactions.loyalty_service import LoyaltyService
from ecrm.transactions.models import (
    CUSTOMER_ID_PATTERN,
    ORDER_ID_PATTERN,
    LoyaltyAccount,
    LoyaltyRules,
    LoyaltyRulesIn,
    Order,
    OrderIn,
    OrderList,
    Redemption,
    RedemptionIn,
    ReturnIn,
    StatusChangeIn,
)
from ecrm.transactions.order_service import OrderService
from ecrm.transactions.wiring import TransactionsConfig, loyalty_service_for, order_service_for

config = load_config(TransactionsConfig)
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
PROGRAMME = ("admin", "marketer")


@dataclass(frozen=True)
class Deps:
    orders: OrderService
    loyalty: LoyaltyService


@cache
def default_deps() -> Deps:
    return Deps(order_service_for(config), loyalty_service_for(config))


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


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: Deps | None = None) -> dict[str, Any]:
    app.append_context(deps=injected or default_deps())
    return app.resolve(event, context)
