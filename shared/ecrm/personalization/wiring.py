"""What every personalization function builds from its environment: config, services, clients.

The one place where the personalization engine is wired to AWS, so each handler stays a few lines. Building
the services imports no numpy: the training job alone imports `training` (and through it the ml layer).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from ecrm.core import aws
from ecrm.core.clock import SystemClock
from ecrm.core.config import PublishingConfig
from ecrm.core.publisher import EventPublisher
from ecrm.personalization.projection import PURCHASE_TYPES, HistoryPolicy
from ecrm.personalization.selection import SelectionRules
from ecrm.personalization.store import PersonalizationStore

if TYPE_CHECKING:  # each factory imports what it builds: a function loads only the services it runs
    from ecrm.personalization.customer_events import ProjectionService
    from ecrm.personalization.offer_service import OfferService
    from ecrm.personalization.recommendation_service import RecommendationService
    from ecrm.personalization.template_service import TemplateService
    from ecrm.personalization.training import TrainingJob


class PersonalizationConfig(PublishingConfig):
    personalization_table_name: str
    # The training job: the lake (Athena) it reads and the bucket its model JSON goes to (models/recommender/).
    lake_bucket_name: str = ""
    lake_database: str = ""
    athena_workgroup: str = ""
    personalization_training_days: int = 365
    personalization_model_retention_days: int = 30
    personalization_for_you_customers: int = 100_000
    # Business rules of recommendation lists.
    personalization_exclude_bought: bool = True
    personalization_max_per_category: int = 3  # 0: no diversity rule
    personalization_require_catalogue: bool = False
    # Interaction types that are purchases (comma-separated): what "already bought" and bought-together read.
    personalization_purchase_events: str = ",".join(sorted(PURCHASE_TYPES))

    def selection_rules(self) -> SelectionRules:
        return SelectionRules(
            exclude_bought=self.personalization_exclude_bought,
            max_per_category=self.personalization_max_per_category or None,
            require_catalogue=self.personalization_require_catalogue,
        )

    def history_policy(self) -> HistoryPolicy:
        kinds = frozenset(k.strip() for k in self.personalization_purchase_events.split(",") if k.strip())
        return HistoryPolicy(purchase_types=kinds)


@dataclass(frozen=True)
class Services:
    recommendations: RecommendationService
    offers: OfferService
    templates: TemplateService


@cache
def store_for(config: PersonalizationConfig) -> PersonalizationStore:
    return PersonalizationStore(aws.client("dynamodb"), config.personalization_table_name)


@cache
def publisher_for(config: PersonalizationConfig) -> EventPublisher:
    return EventPublisher(config.event_bus_name, aws.client("events"))


@cache
def services_for(config: PersonalizationConfig) -> Services:
    from ecrm.personalization.offer_service import OfferService
    from ecrm.personalization.recommendation_service import RecommendationService
    from ecrm.personalization.template_service import TemplateService

    store, clock = store_for(config), SystemClock()
    recommendations = RecommendationService(
        store, clock, rules=config.selection_rules(), history=config.history_policy()
    )
    offers = OfferService(store, publisher_for(config), clock)
    return Services(recommendations, offers, TemplateService(store, clock, recommendations, offers))


@cache
def projection_for(config: PersonalizationConfig) -> ProjectionService:
    from ecrm.personalization.customer_events import ProjectionService

    return ProjectionService(store_for(config), publisher_for(config), SystemClock(), config.history_policy())


def training_job_for(config: PersonalizationConfig) -> TrainingJob:
    """The scheduled training job's collaborators (imported here only: the API never builds one)."""
    from ecrm.core.lake import AthenaLake
    from ecrm.personalization.training import TrainingJob, TrainingSettings

    settings = TrainingSettings(
        retention_days=config.personalization_model_retention_days,
        for_you_customers=config.personalization_for_you_customers,
        history=config.history_policy(),
    )
    return TrainingJob(
        lake=AthenaLake(aws.client("athena"), workgroup=config.athena_workgroup, database=config.lake_database),
        s3=aws.client("s3"),
        bucket=config.lake_bucket_name,
        store=store_for(config),
        publisher=publisher_for(config),
        clock=SystemClock(),
        settings=settings,
        days=config.personalization_training_days,
    )
