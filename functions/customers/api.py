"""REST API of the customer store: profiles, identities, consents, timeline, imports, GDPR, `/me`."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm import __version__
from ecrm.core import aws
from ecrm.core.api import EngineApi
from ecrm.core.auth import Access
from ecrm.core.config import load_config
from ecrm.core.contract import Contract
from ecrm.core.errors import InvalidInput
from ecrm.core.observability import Observability
from ecrm.customers.import_jobs import ImportDesk
from ecrm.customers.models import (
    Channel,
    Consent,
    ConsentUpdate,
    Customer,
    CustomerConsentUpdate,
    CustomerPatch,
    CustomerUpsert,
    CustomerView,
    ErasureRequest,
    IdentityIn,
    ImportRequest,
    ImportStatus,
    ImportTicket,
    Interaction,
    InteractionIn,
    PreferencesPatch,
    TimelinePage,
    UpsertResult,
)
from ecrm.customers.service import CustomerService
from ecrm.customers.wiring import CustomersConfig, service_for

config = load_config(CustomersConfig)
obs = Observability(config)
app = EngineApi(obs.logger, title="eCRM customer store API", version=__version__)

CustomerId = Annotated[str, Path(pattern=r"^cus_[0-9A-Z]{26}$", description="A customer id")]
WRITERS = ("admin", "marketer", "agent")
GDPR_OFFICERS = ("admin", "agent")
IMPORTERS = ("admin", "marketer")


@dataclass(frozen=True)
class Deps:
    service: CustomerService
    imports: ImportDesk


@cache
def default_deps() -> Deps:
    service = service_for(config)
    return Deps(service, ImportDesk(service.store, aws.client("s3"), config.import_bucket_name, service.clock))


def deps() -> Deps:
    return app.context["deps"]


def _client_ip() -> str | None:
    identity = (app.current_event.raw_event.get("requestContext") or {}).get("identity") or {}
    return identity.get("sourceIp")


def _user_agent() -> str | None:
    headers = app.current_event.headers or {}
    return next((v for k, v in headers.items() if k.lower() == "user-agent"), None)


# -- staff: customers --------------------------------------------------------------------------
@app.post(
    "/customers",
    access=Access.staff(*WRITERS),
    summary="Upsert a customer record, resolved by its identities (201 new, 200 matched)",
    responses={201: {"description": "A new customer"}, 200: {"description": "An existing customer, matched"}},
)
def upsert_customer(body: CustomerUpsert) -> tuple[UpsertResult, int]:
    result = deps().service.upsert(body, actor=app.principal().actor, correlation_id=app.correlation_id)
    return result, 201 if result.created else 200


@app.get(
    "/customers", access=Access.staff(), summary="Find a customer by email, phone or external id (namespace:value)"
)
def find_customer(
    email: Annotated[str | None, Query(max_length=320)] = None,
    phone: Annotated[str | None, Query(max_length=40)] = None,
    external_id: Annotated[str | None, Query(max_length=170, pattern=r"^[a-z0-9_\-]{1,40}:.+$")] = None,
) -> Customer:
    given = [(t, v) for t, v in (("email", email), ("phone", phone), ("external_id", external_id)) if v]
    if len(given) != 1:
        raise InvalidInput("give exactly one of email, phone or external_id")
    kind, value = given[0]
    namespace = ""
    if kind == "external_id":
        namespace, value = value.split(":", 1)
    return deps().service.lookup(IdentityIn(type=kind, value=value, namespace=namespace))


@app.get("/customers/<customer_id>", access=Access.staff(), summary="The 360-degree view of a customer")
def get_customer(customer_id: CustomerId) -> CustomerView:
    return deps().service.view(customer_id)


@app.patch(
    "/customers/<customer_id>",
    access=Access.staff(*WRITERS),
    summary="Edit attributes (null removes), add identities, preferences",
)
def patch_customer(customer_id: CustomerId, body: CustomerPatch) -> Customer:
    return deps().service.patch(customer_id, body, actor=app.principal().actor, correlation_id=app.correlation_id)


@app.put(
    "/customers/<customer_id>/consents/<channel>/<purpose>",
    access=Access.staff(*WRITERS),
    summary="Grant or withdraw a consent, with proof",
)
def put_consent(
    customer_id: CustomerId,
    channel: Annotated[Channel, Path()],
    purpose: Annotated[str, Path(pattern=r"^(marketing|transactional|profiling|topic:[a-z0-9_\-]{1,40})$")],
    body: ConsentUpdate,
) -> Consent:
    return deps().service.set_consent(
        customer_id,
        channel,
        purpose,
        body,
        source="staff",
        recorded_by=app.principal().actor,
        ip=_client_ip(),
        user_agent=_user_agent(),
        correlation_id=app.correlation_id,
    )


@app.get("/customers/<customer_id>/timeline", access=Access.staff(), summary="Interactions, newest first, paged")
def get_timeline(
    customer_id: CustomerId,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> TimelinePage:
    items, next_cursor = deps().service.timeline(customer_id, limit=limit, cursor=cursor)
    return TimelinePage(items=items, next_cursor=next_cursor)


@app.post(
    "/customers/<customer_id>/interactions",
    access=Access.staff(*WRITERS),
    summary="Record an interaction (201; 200 if already recorded)",
    responses={201: {"description": "Recorded"}, 200: {"description": "Already recorded"}},
)
def post_interaction(customer_id: CustomerId, body: InteractionIn) -> tuple[Interaction, int]:
    interaction, created = deps().service.record_interaction(customer_id, body, correlation_id=app.correlation_id)
    return interaction, 201 if created else 200


# -- staff: GDPR -------------------------------------------------------------------------------
@app.get(
    "/customers/<customer_id>/export",
    access=Access.staff(*GDPR_OFFICERS),
    summary="Everything held on the customer (Art. 15/20)",
)
def export_customer(customer_id: CustomerId) -> dict[str, Any]:
    return deps().service.export(customer_id)


class ErasureAccepted(Contract):
    request_id: str
    status: str
    status_url: str


@app.delete(
    "/customers/<customer_id>",
    access=Access.staff(*GDPR_OFFICERS),
    summary="Erase the customer in every engine (Art. 17); 202 with a request id",
    status_code=202,
)
def erase_customer(customer_id: CustomerId) -> tuple[ErasureAccepted, int]:
    request = deps().service.request_erasure(
        customer_id, requested_by=app.principal().actor, correlation_id=app.correlation_id
    )
    return ErasureAccepted(
        request_id=request.request_id, status=request.status, status_url=f"/erasures/{request.request_id}"
    ), 202


@app.get(
    "/erasures/<request_id>", access=Access.staff(*GDPR_OFFICERS), summary="Progress of an erasure request, per engine"
)
def get_erasure(request_id: Annotated[str, Path(pattern=r"^era_[0-9A-Z]{26}$")]) -> ErasureRequest:
    return deps().service.get_erasure(request_id)


# -- staff: imports ----------------------------------------------------------------------------
@app.post(
    "/imports",
    access=Access.staff(*IMPORTERS),
    summary="Start a bulk import: returns a presigned upload URL and the import id",
    status_code=201,
)
def create_import(body: ImportRequest) -> tuple[ImportTicket, int]:
    return deps().imports.open(body, requested_by=app.principal().actor), 201


@app.get(
    "/imports/<import_id>", access=Access.staff(*IMPORTERS), summary="Import progress, counts and the error report"
)
def get_import(import_id: Annotated[str, Path(pattern=r"^imp_[0-9A-Z]{26}$")]) -> ImportStatus:
    return deps().imports.status(import_id)


# -- customers: /me ----------------------------------------------------------------------------
@app.get("/me", access=Access.customer(), summary="The signed-in customer's own profile")
def get_me() -> CustomerView:
    return deps().service.view(app.customer_id())


@app.patch("/me/preferences", access=Access.customer(), summary="Change my preferences")
def patch_my_preferences(body: PreferencesPatch) -> Customer:
    return deps().service.update_preferences(app.customer_id(), body, correlation_id=app.correlation_id)


@app.put("/me/consents/<channel>/<purpose>", access=Access.customer(), summary="Grant or withdraw one of my consents")
def put_my_consent(
    channel: Annotated[Channel, Path()],
    purpose: Annotated[str, Path(pattern=r"^(marketing|transactional|profiling|topic:[a-z0-9_\-]{1,40})$")],
    body: CustomerConsentUpdate,
) -> Consent:
    return deps().service.set_consent(
        app.customer_id(),
        channel,
        purpose,
        ConsentUpdate.model_validate(body.model_dump()),  # no source: the proof's source is the customer
        source="customer",
        recorded_by=app.customer_id(),
        ip=_client_ip(),
        user_agent=_user_agent(),
        correlation_id=app.correlation_id,
    )


@app.get("/me/export", access=Access.customer(), summary="Everything held on me (Art. 15/20)")
def export_me() -> dict[str, Any]:
    return deps().service.export(app.customer_id())


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: Deps | None = None) -> dict[str, Any]:
    app.append_context(deps=injected or default_deps())
    return app.resolve(event, context)
