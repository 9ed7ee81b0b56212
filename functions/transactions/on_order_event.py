"""Order events into the loyalty ledger: an order placed earns, a return or a cancellation takes back; a new customer
gets the sign-up bonus, a customer's birthday is noted from their profile events for the birthday job, and a merge
of customers moves the merged customers' accounts to the survivor's. Each order event also counts the customer's
purchase history again for their comparisons (`CatalogService.refresh_history`).

Each change is recorded with its cause, so a redelivered event changes nothing; a reversal that arrives
before its earning fails its record, and the queue retries it later. Counting the history again is a
replacement, so a redelivery only counts it once more.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.core.config import load_config
from ecrm.core.consumer import EventConsumer, ReceivedEvent
from ecrm.core.observability import Observability
from ecrm.customers.models import CustomerCreated, CustomersMerged, CustomerUpdated
from ecrm.transactions.catalog_service import CatalogService
from ecrm.transactions.loyalty_birthdays import birth_date_of
from ecrm.transactions.loyalty_service import LoyaltyService
from ecrm.transactions.models import OrderPlaced, OrderReturned, OrderStatusChanged
from ecrm.transactions.wiring import TransactionsConfig, catalog_service_for, loyalty_service_for

config = load_config(TransactionsConfig)
obs = Observability(config)
consumer = EventConsumer(
    obs.logger,
    accepts=[OrderPlaced, OrderReturned, OrderStatusChanged, CustomerCreated, CustomerUpdated, CustomersMerged],
)


@obs.entrypoint()
def handler(
    event: dict[str, Any],
    context: LambdaContext,
    injected: LoyaltyService | None = None,
    catalog: CatalogService | None = None,
) -> dict[str, Any]:
    """`injected` alone (a test of the ledger) leaves the comparison histories alone."""
    service = injected or loyalty_service_for(config)
    histories = catalog or (None if injected else catalog_service_for(config))

    def on_event(received: ReceivedEvent[Any]) -> None:
        correlation_id = received.metadata.correlation_id
        data = received.data
        if isinstance(data, OrderPlaced):
            service.earn_for_order(data, correlation_id=correlation_id)
        elif isinstance(data, OrderReturned):
            service.reverse_for_return(data, correlation_id=correlation_id)
        elif isinstance(data, CustomersMerged):
            service.merge_accounts(data.survivor_id, data.merged_ids, data.merged_at, correlation_id=correlation_id)
            return
        elif isinstance(data, CustomerCreated | CustomerUpdated):
            if isinstance(data, CustomerCreated):
                service.grant_signup_bonus(data.customer_id, data.created_at, correlation_id=correlation_id)
            if data.snapshot is not None:
                service.note_birth_date(
                    data.customer_id, birth_date_of(data.snapshot.attributes), data.snapshot.version
                )
            return
        else:
            service.reverse_for_cancellation(data, correlation_id=correlation_id)
        if histories is not None:
            histories.refresh_history(data.customer_id)

    return consumer(event, context, on_event)
