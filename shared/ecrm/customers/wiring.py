"""What every customers function builds from its environment: config, the service, clients.

The one place where the customer store is wired to AWS, so each handler stays a few lines.
"""

from __future__ import annotations

import json
from functools import cache

from ecrm.core import aws
from ecrm.core.clock import SystemClock
from ecrm.core.config import PublishingConfig
from ecrm.core.publisher import EventPublisher
from ecrm.customers.logic import DEFAULT_UNIQUE_TYPES, MergePolicy
from ecrm.customers.service import DEFAULT_PUBLISHED_ATTRIBUTES, CustomerService
from ecrm.customers.store import CustomerStore


class CustomersConfig(PublishingConfig):
    customers_table_name: str
    import_bucket_name: str = ""
    import_state_machine_arn: str = ""
    # JSON: attribute -> sources, best first; "*" for every other attribute
    customers_source_priority: str = '{"*": ["staff", "erp", "callcenter", "shop", "web"]}'
    customers_unique_identities: str = ",".join(sorted(DEFAULT_UNIQUE_TYPES))
    customers_default_phone_region: str | None = None
    erasure_participants: str = "customers"
    lake_customer_changes_stream_name: str = ""
    # Attributes profile events carry for other engines (comma-separated); empty: the default set.
    customers_published_attributes: str = ""

    def policy(self) -> MergePolicy:
        priority = {k: tuple(v) for k, v in json.loads(self.customers_source_priority).items()}
        unique = frozenset(t.strip() for t in self.customers_unique_identities.split(",") if t.strip())
        return MergePolicy(unique_types=unique, source_priority=priority)


@cache
def service_for(config: CustomersConfig) -> CustomerService:
    return CustomerService(
        store=CustomerStore(aws.client("dynamodb"), config.customers_table_name),
        publisher=EventPublisher(config.event_bus_name, aws.client("events")),
        clock=SystemClock(),
        policy=config.policy(),
        default_region=config.customers_default_phone_region,
        erasure_participants=tuple(p.strip() for p in config.erasure_participants.split(",") if p.strip()),
        published_attributes=frozenset(a.strip() for a in config.customers_published_attributes.split(",") if a.strip())
        or DEFAULT_PUBLISHED_ATTRIBUTES,
    )
