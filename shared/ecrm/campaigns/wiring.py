"""What every campaigns function builds from its environment: the config, the store, the services and the
adapters of the run (Step Functions, the manifest bucket, broadcast's bulk request function, the scheduler).

Settings left empty leave their adapter out: the API without a state machine still defines campaigns,
and a launch then answers 503 instead of claiming a run it could not start.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from ecrm.broadcast.models import MessageRequest
from ecrm.campaigns.erasure import CampaignErasure
from ecrm.campaigns.journey_runtime import JourneyRuntime, NoFacts
from ecrm.campaigns.models import Campaign
from ecrm.campaigns.outcomes import CampaignOutcomes
from ecrm.campaigns.ports import (
    BuiltSegmentAudiences,
    CampaignAudience,
    ContactCardFacts,
    ContactCardZones,
    EventBridgeCampaignScheduler,
    LambdaBroadcastGateway,
    LambdaRecommendations,
    S3AudienceLists,
    S3ManifestStore,
    StepFunctionsRunStarter,
)
from ecrm.campaigns.runs import CampaignRunSteps
from ecrm.campaigns.service import CampaignService, JourneyService
from ecrm.campaigns.state_store import JourneyStateStore
from ecrm.campaigns.store import CampaignStore
from ecrm.core import aws
from ecrm.core.clock import SystemClock
from ecrm.core.config import FunctionConfig
from ecrm.core.errors import ServiceUnavailable


class CampaignsConfig(FunctionConfig):
    campaigns_table_name: str
    campaigns_state_machine_arn: str = ""
    campaigns_manifest_bucket: str = ""
    campaigns_broadcast_function_name: str = ""
    campaigns_schedule_group: str = "default"
    campaigns_schedule_target_arn: str = ""
    campaigns_schedule_role_arn: str = ""
    customers_contacts_function_name: str = ""
    personalization_recommend_function_name: str = ""  # empty: journeys' messages carry no recommendations


class CampaignsErasureConfig(CampaignsConfig):
    """The erasure consumer publishes its acknowledgement itself (the engine's other events go through the
    outbox)."""

    event_bus_name: str


class Unconfigured:
    """Stands in for an adapter whose setting is empty: using it is a 503, not a silent no-op."""

    def __init__(self, what: str) -> None:
        self.what = what

    def start(self, campaign_id: str, run: int, attempt: int) -> str:
        raise ServiceUnavailable(f"{self.what} is not configured")

    def schedule(self, campaign: Campaign) -> None:
        raise ServiceUnavailable(f"{self.what} is not configured")

    def unschedule(self, campaign_id: str) -> None:
        return None

    def request(self, messages: list[MessageRequest]) -> list[str]:
        raise ServiceUnavailable(f"{self.what} is not configured")

    def zones(self, customer_ids: list[str]) -> dict[str, str]:
        raise ServiceUnavailable(f"{self.what} is not configured")


def store_for(config: CampaignsConfig) -> CampaignStore:
    return CampaignStore(aws.client("dynamodb"), config.campaigns_table_name)


def audience_for(config: CampaignsConfig) -> CampaignAudience:
    """Segments' members come from their last audience build in the lake bucket, which the engine learns of
    from `AudienceBuilt`, and long uploaded lists are kept there; without the bucket configured, only lists
    short enough for the campaign's item."""
    if not config.campaigns_manifest_bucket:
        return CampaignAudience()
    return CampaignAudience(
        BuiltSegmentAudiences(aws.client("s3"), store_for(config).segment_manifest),
        S3AudienceLists(aws.client("s3"), config.campaigns_manifest_bucket),
    )


@cache
def campaign_service_for(config: CampaignsConfig) -> CampaignService:
    runs = (
        StepFunctionsRunStarter(aws.client("stepfunctions"), config.campaigns_state_machine_arn)
        if config.campaigns_state_machine_arn
        else Unconfigured("the campaign run state machine")
    )
    scheduler = (
        EventBridgeCampaignScheduler(
            aws.client("scheduler"),
            config.campaigns_schedule_group,
            config.campaigns_schedule_target_arn,
            config.campaigns_schedule_role_arn,
        )
        if config.campaigns_schedule_target_arn
        else Unconfigured("the campaign scheduler")
    )
    broadcast = broadcast_for(config)
    return CampaignService(
        store_for(config),
        SystemClock(),
        audiences=audience_for(config),
        runs=runs,
        scheduler=scheduler,
        previewer=broadcast if isinstance(broadcast, LambdaBroadcastGateway) else None,
        proofs=broadcast if isinstance(broadcast, LambdaBroadcastGateway) else None,
    )


@cache
def journey_service_for(config: CampaignsConfig) -> JourneyService:
    return JourneyService(store_for(config), SystemClock())


def broadcast_for(config: CampaignsConfig) -> LambdaBroadcastGateway | Unconfigured:
    if not config.campaigns_broadcast_function_name:
        return Unconfigured("broadcast's bulk request function")
    return LambdaBroadcastGateway(aws.client("lambda"), config.campaigns_broadcast_function_name)


@cache
def run_steps_for(config: CampaignsConfig) -> CampaignRunSteps:
    return CampaignRunSteps(
        store_for(config),
        SystemClock(),
        audiences=audience_for(config),
        manifests=S3ManifestStore(aws.client("s3"), config.campaigns_manifest_bucket),
        broadcast=broadcast_for(config),
        zones=(
            ContactCardZones(aws.client("lambda"), config.customers_contacts_function_name)
            if config.customers_contacts_function_name
            else Unconfigured("the customer store's contacts function")
        ),
    )


@cache
def journey_runtime_for(config: CampaignsConfig) -> JourneyRuntime:
    return JourneyRuntime(
        JourneyStateStore(aws.client("dynamodb"), config.campaigns_table_name),
        SystemClock(),
        broadcast=broadcast_for(config),
        facts=(
            ContactCardFacts(aws.client("lambda"), config.customers_contacts_function_name)
            if config.customers_contacts_function_name
            else NoFacts()
        ),
        definitions=store_for(config),
        recommendations=(
            LambdaRecommendations(aws.client("lambda"), config.personalization_recommend_function_name)
            if config.personalization_recommend_function_name
            else None
        ),
    )


def erasure_for(config: CampaignsConfig) -> CampaignErasure:
    bucket = config.campaigns_manifest_bucket
    return CampaignErasure(
        store_for(config),
        JourneyStateStore(aws.client("dynamodb"), config.campaigns_table_name),
        SystemClock(),
        lists=S3AudienceLists(aws.client("s3"), bucket) if bucket else None,
        manifests=S3ManifestStore(aws.client("s3"), bucket) if bucket else None,
    )


@cache
def outcomes_for(config: CampaignsConfig) -> CampaignOutcomes:
    return CampaignOutcomes(store_for(config), SystemClock(), metric=emit_metric)


def emit_metric(name: str, value: float, dimensions: Mapping[str, str]) -> None:
    """One CloudWatch metric in embedded metric format, per campaign and variant (the dashboard's campaign
    widgets find them by SEARCH). One document per count: each carries its own dimension values."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    from ecrm.core.observability import METRICS_NAMESPACE

    with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace=METRICS_NAMESPACE) as metric:
        for key, dimension in dimensions.items():
            metric.add_dimension(key, dimension)
