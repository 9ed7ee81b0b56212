"""REST API of the campaigns engine: campaigns and journeys.

Admins and marketers define, launch, pause, resume and cancel campaigns and journeys; analysts may read
them and their reports too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm import __version__
from ecrm.campaigns.journey_library import catalogue, draft
from ecrm.campaigns.models import (
    CAMPAIGN_ID_PATTERN,
    JOURNEY_ID_PATTERN,
    Campaign,
    CampaignIn,
    CampaignList,
    CampaignReport,
    DryRun,
    Journey,
    JourneyIn,
    JourneyLibrary,
    JourneyList,
    JourneyReport,
    LibraryDraftIn,
    TestSendIn,
    TestSendResult,
)
from ecrm.campaigns.service import CampaignService, JourneyService
from ecrm.campaigns.wiring import CampaignsConfig, campaign_service_for, journey_service_for
from ecrm.core.api import EngineApi
from ecrm.core.auth import Access
from ecrm.core.config import load_config
from ecrm.core.observability import Observability

config = load_config(CampaignsConfig)
obs = Observability(config)
app = EngineApi(obs.logger, title="eCRM campaigns API", version=__version__)

CampaignId = Annotated[str, Path(pattern=CAMPAIGN_ID_PATTERN, description="A campaign id")]
JourneyId = Annotated[str, Path(pattern=JOURNEY_ID_PATTERN, description="A journey id")]
LibraryName = Annotated[str, Path(pattern=r"^[a-z_]{1,40}$", description="A ready-made journey's name")]
Limit = Annotated[int, Query(ge=1, le=100, description="How many, newest first")]
After = Annotated[str | None, Query(max_length=200, description="The `next` of the previous page")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=128,
        pattern=r"^[A-Za-z0-9_.:\-]+$",
        description="A retry with the same key sends nothing twice; a new key sends the tests again",
    ),
]
MARKETING = ("admin", "marketer")
READERS = ("admin", "marketer", "analyst")


@dataclass(frozen=True)
class Deps:
    campaigns: CampaignService
    journeys: JourneyService


@cache
def default_deps() -> Deps:
    return Deps(campaign_service_for(config), journey_service_for(config))


def deps() -> Deps:
    return app.context["deps"]


# -- campaigns ------------------------------------------------------------------------------------------------
@app.post("/campaigns", access=Access.staff(*MARKETING), summary="Define a campaign (201, a draft)", status_code=201)
def create_campaign(body: CampaignIn) -> tuple[Campaign, int]:
    campaign = deps().campaigns.create(body, actor=app.principal().actor, correlation_id=app.correlation_id)
    return campaign, 201


@app.get("/campaigns", access=Access.staff(*READERS), summary="Campaigns, newest first")
def list_campaigns(limit: Limit = 50, after: After = None) -> CampaignList:
    return deps().campaigns.page(limit, after)


@app.get("/campaigns/<campaign_id>", access=Access.staff(*READERS), summary="A campaign")
def get_campaign(campaign_id: CampaignId) -> Campaign:
    return deps().campaigns.get(campaign_id)


@app.post(
    "/campaigns/<campaign_id>/dry-run",
    access=Access.staff(*MARKETING),
    summary="Recipients per variant and holdout as the run would assign them, and what broadcast's policy would "
    "decide now for a sample of them (send, defer, suppress, top reasons); nothing is sent",
)
def dry_run_campaign(campaign_id: CampaignId) -> DryRun:
    return deps().campaigns.dry_run(campaign_id)


@app.post(
    "/campaigns/<campaign_id>/test-send",
    access=Access.staff(*MARKETING),
    summary="Each variant, rendered with sample data, to up to 20 staff addresses (emails, E.164 numbers) as a "
    "test; no customer gets it and no report counts it",
)
def send_campaign_tests(
    campaign_id: CampaignId, body: Annotated[TestSendIn, Body()], idempotency_key: IdempotencyKey = None
) -> TestSendResult:
    return deps().campaigns.test_send(campaign_id, body, idempotency_key=idempotency_key)


@app.post(
    "/campaigns/<campaign_id>/launch",
    access=Access.staff(*MARKETING),
    summary="Start a draft now or on its schedule; on a running campaign, make sure its run started",
)
def launch_campaign(campaign_id: CampaignId) -> Campaign:
    return deps().campaigns.launch(campaign_id, correlation_id=app.correlation_id)


@app.post("/campaigns/<campaign_id>/pause", access=Access.staff(*MARKETING), summary="Stop handing messages over")
def pause_campaign(campaign_id: CampaignId) -> Campaign:
    return deps().campaigns.pause(campaign_id, correlation_id=app.correlation_id)


@app.post(
    "/campaigns/<campaign_id>/resume",
    access=Access.staff(*MARKETING),
    summary="Go on where the run stopped; nobody handed over before is sent to again",
)
def resume_campaign(campaign_id: CampaignId) -> Campaign:
    return deps().campaigns.resume(campaign_id, correlation_id=app.correlation_id)


@app.post("/campaigns/<campaign_id>/cancel", access=Access.staff(*MARKETING), summary="Stop for good")
def cancel_campaign(campaign_id: CampaignId) -> Campaign:
    return deps().campaigns.cancel(campaign_id, correlation_id=app.correlation_id)


@app.get(
    "/campaigns/<campaign_id>/report",
    access=Access.staff(*READERS),
    summary="Counts and rates per arm, and each variant's lift over the holdout",
)
def campaign_report(campaign_id: CampaignId) -> CampaignReport:
    return deps().campaigns.report(campaign_id)


# -- journeys -------------------------------------------------------------------------------------------------
@app.post("/journeys", access=Access.staff(*MARKETING), summary="Define a journey (201, a draft)", status_code=201)
def create_journey(body: JourneyIn) -> tuple[Journey, int]:
    return deps().journeys.create(body, actor=app.principal().actor, correlation_id=app.correlation_id), 201


@app.get("/journeys", access=Access.staff(*READERS), summary="Journeys, newest first")
def list_journeys(limit: Limit = 50, after: After = None) -> JourneyList:
    return deps().journeys.page(limit, after)


# Before `/journeys/<journey_id>`: the resolver tries routes in order, and "library" is no journey id.
@app.get("/journeys/library", access=Access.staff(*READERS), summary="The ready-made journeys and their parameters")
def journey_library() -> JourneyLibrary:
    return catalogue()


@app.post(
    "/journeys/library/<name>",
    access=Access.staff(*MARKETING),
    summary="Define a journey from the library (201, a draft), with parameters, content and overrides",
    status_code=201,
)
def create_library_journey(name: LibraryName, body: LibraryDraftIn) -> tuple[Journey, int]:
    journey = draft(name, body)
    return deps().journeys.create(journey, actor=app.principal().actor, correlation_id=app.correlation_id), 201


@app.get("/journeys/<journey_id>", access=Access.staff(*READERS), summary="A journey")
def get_journey(journey_id: JourneyId) -> Journey:
    return deps().journeys.get(journey_id)


@app.post("/journeys/<journey_id>/activate", access=Access.staff(*MARKETING), summary="Start entering customers")
def activate_journey(journey_id: JourneyId) -> Journey:
    return deps().journeys.activate(journey_id, correlation_id=app.correlation_id)


@app.post("/journeys/<journey_id>/deactivate", access=Access.staff(*MARKETING), summary="Stop entering customers")
def deactivate_journey(journey_id: JourneyId) -> Journey:
    return deps().journeys.deactivate(journey_id, correlation_id=app.correlation_id)


@app.get(
    "/journeys/<journey_id>/report",
    access=Access.staff(*READERS),
    summary="Customers entered, active, exited, per step",
)
def journey_report(journey_id: JourneyId) -> JourneyReport:
    return deps().journeys.report(journey_id)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: Deps | None = None) -> dict[str, Any]:
    app.append_context(deps=injected or default_deps())
    return app.resolve(event, context)
