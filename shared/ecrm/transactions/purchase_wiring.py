"""What the brokered purchase's functions (its API routes and the saga's steps) build from their environment.

Beside `wiring` rather than in it: the purchase needs the catalogue, the order service, a payment provider,
vendors and Step Functions, which no other transactions function does.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

from ecrm.core import aws
from ecrm.core.clock import SystemClock
from ecrm.core.errors import ConfigurationError
from ecrm.transactions.catalog_store import CatalogStore
from ecrm.transactions.payments import PaymentDouble
from ecrm.transactions.purchase_service import PurchaseService
from ecrm.transactions.purchase_store import PurchaseStore, StepFunctionsSaga, TableChargeBook
from ecrm.transactions.purchases import PricedOffer
from ecrm.transactions.vendors import VendorClient
from ecrm.transactions.wiring import TransactionsConfig, order_service_for

# The local cloud's runtime names itself so; in AWS it is `AWS_Lambda_python3.x`. Only there may a vendor sit on
# the loopback address over plain HTTP (the e2e tests' vendor): a deployment reaches vendors over HTTPS only.
LOCAL_RUNTIME = "AWS_Lambda_python_local"


class PurchaseConfig(TransactionsConfig):
    """What the purchase routes and the saga's steps read (set by `infra/engines/transactions.py`)."""

    purchase_state_machine_arn: str = ""
    purchase_callback_base_url: str = ""
    purchase_callback_tolerance_s: int = 300
    payment_provider: Literal["double"] = "double"
    payment_double_decline_from_minor: int | None = None
    aws_execution_env: str = ""


class CatalogOffers:
    """The purchase's price and stock from the catalogue's current offer (one Query of the product)."""

    def __init__(self, catalog: CatalogStore) -> None:
        self.catalog = catalog

    def priced_offer(self, product_id: str, vendor_id: str) -> PricedOffer | None:
        product, offers = self.catalog.product_with_offers(product_id)
        offer = next((o for o in offers if o.vendor_id == vendor_id), None)
        if product is None or offer is None:
            return None
        return PricedOffer(
            product_name=product.name,
            category=product.category,
            unit_price_minor=offer.price_minor,
            currency=offer.currency,
            in_stock=offer.stock > 0,
            sku=offer.sku,
        )


@cache
def purchase_service_for(config: PurchaseConfig) -> PurchaseService:
    dynamodb = aws.client("dynamodb")
    clock = SystemClock()
    loopback = config.aws_execution_env == LOCAL_RUNTIME
    if config.payment_provider != "double":  # pragma: no cover - the literal admits no other yet
        raise ConfigurationError(f"no payment provider {config.payment_provider}")
    payments = PaymentDouble(
        TableChargeBook(dynamodb, config.transactions_table_name),
        decline_from_minor=config.payment_double_decline_from_minor,
    )
    return PurchaseService(
        PurchaseStore(dynamodb, config.transactions_table_name),
        offers=CatalogOffers(CatalogStore(dynamodb, config.transactions_table_name)),
        vendors=VendorClient(clock, allow_loopback_http=loopback),
        payments=payments,
        saga=StepFunctionsSaga(aws.client("stepfunctions"), config.purchase_state_machine_arn),
        orders=order_service_for(config),
        clock=clock,
        callback_base_url=config.purchase_callback_base_url,
        callback_tolerance_s=config.purchase_callback_tolerance_s,
        allow_loopback_http=loopback,
    )
