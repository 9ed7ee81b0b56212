"""What every transactions function builds from its environment: the config and the services over one table."""

from __future__ import annotations

import logging
from functools import cache
from typing import TYPE_CHECKING

from ecrm.core import aws
from ecrm.core.clock import SystemClock
from ecrm.core.config import FunctionConfig
from ecrm.transactions.catalog_recommendations import LambdaRecommender, RecommendationsBeside
from ecrm.transactions.catalog_service import CatalogService
from ecrm.transactions.catalog_store import CatalogStore
from ecrm.transactions.loyalty_service import LoyaltyService
from ecrm.transactions.loyalty_store import LoyaltyStore
from ecrm.transactions.loyalty_zones import CardTimeZones, TimeZones, UtcEverywhere
from ecrm.transactions.merge_map import MergeMap
from ecrm.transactions.order_lake import OrderLakeRows
from ecrm.transactions.order_service import OrderService
from ecrm.transactions.order_store import OrderStore

if TYPE_CHECKING:
    from ecrm.transactions.erasure import TransactionsErasure


class TransactionsConfig(FunctionConfig):
    transactions_table_name: str
    lake_order_lines_stream_name: str = ""  # the lake writer's Firehose stream (`on_order_changed`)
    personalization_recommend_function_name: str = ""  # asked beside a comparison; empty: none asked
    customers_contacts_function_name: str = ""  # customers' time zones for the birthday job; empty: UTC


@cache
def order_service_for(config: TransactionsConfig) -> OrderService:
    client, table = aws.client("dynamodb"), config.transactions_table_name
    return OrderService(OrderStore(client, table), SystemClock(), MergeMap(client, table))


@cache
def loyalty_service_for(config: TransactionsConfig) -> LoyaltyService:
    return LoyaltyService(LoyaltyStore(aws.client("dynamodb"), config.transactions_table_name), SystemClock())


@cache
def order_lake_rows_for(config: TransactionsConfig) -> OrderLakeRows:
    client = aws.client("dynamodb")
    return OrderLakeRows(
        OrderStore(client, config.transactions_table_name), MergeMap(client, config.transactions_table_name)
    )


def time_zones_for(config: TransactionsConfig) -> TimeZones:
    if not config.customers_contacts_function_name:
        return UtcEverywhere()
    return CardTimeZones(aws.client("lambda"), config.customers_contacts_function_name)


def erasure_for(config: TransactionsConfig) -> TransactionsErasure:
    from ecrm.transactions.erasure import TransactionsErasure

    client = aws.client("dynamodb")
    table = config.transactions_table_name
    return TransactionsErasure(
        OrderStore(client, table), LoyaltyStore(client, table), CatalogStore(client, table), SystemClock()
    )


@cache
def catalog_service_for(config: TransactionsConfig) -> CatalogService:
    """The catalogue, reading a customer's orders through the order service to learn what they value, and asking
    the personalization engine's recommend function for recommendations beside a comparison."""
    recommender = (
        LambdaRecommender(aws.client("lambda"), config.personalization_recommend_function_name)
        if config.personalization_recommend_function_name
        else None
    )
    return CatalogService(
        CatalogStore(aws.client("dynamodb"), config.transactions_table_name),
        order_service_for(config),
        SystemClock(),
        RecommendationsBeside(recommender, on_failure=logging.getLogger(__name__).warning),
    )
