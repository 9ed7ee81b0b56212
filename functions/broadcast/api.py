"""REST API of the broadcast engine: messages, the suppression list, webhook endpoints, inboxes and devices,
and the public pages the signed links in marketing messages open (one-click unsubscribe, preference centre).

Staff request messages and read their status; a signed-in customer reads their inbox and registers devices
under `/me`, with the customer id from the token; the unsubscribe and preference pages are public and
trust only the signed token in their query.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any
from urllib.parse import parse_qs

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm import __version__
from ecrm.broadcast.models import (
    CUSTOMER_ID_PATTERN,
    MESSAGE_ID_PATTERN,
    Device,
    DeviceIn,
    Inbox,
    InboxItem,
    MessageAccepted,
    MessagePage,
    MessageRequest,
    MessageView,
    SuppressionPage,
    WebhookEndpointCreated,
    WebhookEndpointIn,
)
from ecrm.broadcast.preferences import PreferenceCentre, confirm_page, unsubscribed_page
from ecrm.broadcast.service import MessageService
from ecrm.broadcast.wiring import BroadcastConfig, message_service_for, preference_centre_for
from ecrm.core.api import EngineApi
from ecrm.core.auth import Access
from ecrm.core.config import load_config
from ecrm.core.observability import Observability

config = load_config(BroadcastConfig)
obs = Observability(config)
app = EngineApi(obs.logger, title="eCRM broadcast API", version=__version__)

MessageId = Annotated[str, Path(pattern=MESSAGE_ID_PATTERN, description="A message id")]
CustomerId = Annotated[str, Path(pattern=CUSTOMER_ID_PATTERN, description="A customer id")]
ItemId = Annotated[str, Path(pattern=MESSAGE_ID_PATTERN, description="An inbox item id")]
DeviceId = Annotated[str, Path(pattern=r"^dev_[0-9A-Z]{26}$", description="A device id")]
Address = Annotated[str, Path(min_length=3, max_length=320, description="An email address, E.164 number or endpoint")]
Limit = Annotated[int, Query(ge=1, le=100, description="How many, newest first")]
Cursor = Annotated[str | None, Query(max_length=512, description="The `next` of the previous page")]
LinkTokenQuery = Annotated[str, Query(min_length=16, max_length=2048, description="The signed token of the link")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=128,
        pattern=r"^[A-Za-z0-9_.:\-]+$",
        description="Names an api-sourced message: a retry with the same key and body answers the same message",
    ),
]
SENDERS = ("admin", "marketer", "agent")
LINKS = "reached from a signed link in a message: the token in the query is checked (RFC 8058 one-click)"
HTML = {200: {"description": "A page", "content": {"text/html": {"schema": {"type": "string"}}}}}


@dataclass(frozen=True)
class Deps:
    messages: MessageService
    links: PreferenceCentre


@cache
def default_deps() -> Deps:
    return Deps(message_service_for(config), preference_centre_for(config))


def deps() -> Deps:
    return app.context["deps"]


def _html(body: str) -> Response[str]:
    return Response(
        status_code=200,
        content_type="text/html; charset=utf-8",
        body=body,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


def _caller() -> dict[str, str | None]:
    event = app.current_event
    identity = (event.raw_event.get("requestContext") or {}).get("identity") or {}
    return {"ip": identity.get("sourceIp"), "user_agent": event.headers.get("user-agent")}


# -- messages ----------------------------------------------------------------------------------------------
@app.post(
    "/messages",
    access=Access.staff(*SENDERS),
    summary="Send a message to a customer through the delivery policy (202; the same key and body: the same message)",
    status_code=202,
)
def request_message(
    body: Annotated[MessageRequest, Body()], idempotency_key: IdempotencyKey = None
) -> tuple[MessageAccepted, int]:
    accepted = deps().messages.request(body, idempotency_key=idempotency_key, correlation_id=app.correlation_id)
    return accepted, 202


@app.get("/messages/<message_id>", access=Access.staff(), summary="A message's status and history")
def get_message(message_id: MessageId) -> MessageView:
    return deps().messages.get(message_id)


@app.get("/customers/<customer_id>/messages", access=Access.staff(), summary="A customer's messages, newest first")
def get_customer_messages(customer_id: CustomerId, limit: Limit = 20, cursor: Cursor = None) -> MessagePage:
    return deps().messages.of_customer(customer_id, limit=limit, cursor=cursor)


# -- suppression list and webhook endpoints -------------------------------------------------------------
@app.get("/suppressions", access=Access.staff(*SENDERS), summary="The suppression list")
def get_suppressions(limit: Limit = 50, cursor: Cursor = None) -> SuppressionPage:
    return deps().messages.suppressions(limit=limit, cursor=cursor)


@app.delete(
    "/suppressions/<address>",
    access=Access.staff("admin"),
    summary="Take an address off the list (204)",
    status_code=204,
)
def delete_suppression(address: Address) -> Response[str]:
    deps().messages.unsuppress(address)
    return Response(status_code=204, body="")


@app.post(
    "/webhooks/endpoints",
    access=Access.staff("admin"),
    summary="Register a webhook endpoint; its signing secret is shown once (201)",
    status_code=201,
)
def create_webhook_endpoint(body: Annotated[WebhookEndpointIn, Body()]) -> tuple[WebhookEndpointCreated, int]:
    return deps().messages.add_endpoint(body), 201


# -- the customer's own ------------------------------------------------------------------------------------
@app.get("/me/inbox", access=Access.customer(), summary="My in-app messages, newest first")
def get_my_inbox() -> Inbox:
    return deps().messages.inbox(app.customer_id())


@app.post("/me/inbox/<item_id>/read", access=Access.customer(), summary="Mark one of my in-app messages read")
def read_my_inbox_item(item_id: ItemId) -> InboxItem:
    return deps().messages.mark_read(app.customer_id(), item_id)


@app.post(
    "/me/devices", access=Access.customer(), summary="Register my device for push notifications (201)", status_code=201
)
def add_my_device(body: Annotated[DeviceIn, Body()]) -> tuple[Device, int]:
    return deps().messages.add_device(app.customer_id(), body), 201


@app.delete("/me/devices/<device_id>", access=Access.customer(), summary="Forget my device (204)", status_code=204)
def delete_my_device(device_id: DeviceId) -> Response[str]:
    deps().messages.remove_device(app.customer_id(), device_id)
    return Response(status_code=204, body="")


# -- the signed links' pages --------------------------------------------------------------------------------
@app.post(
    "/unsubscribe",
    access=Access.public(LINKS),
    summary="One-click unsubscribe (RFC 8058): withdraws what the link names; idempotent, 200",
    responses=HTML,
)
def post_unsubscribe(token: LinkTokenQuery) -> Response[str]:
    link = deps().links.unsubscribe(token, correlation_id=app.correlation_id, **_caller())
    return _html(unsubscribed_page(link))


@app.get("/unsubscribe", access=Access.public(LINKS), summary="The unsubscribe confirmation page", responses=HTML)
def get_unsubscribe(token: LinkTokenQuery) -> Response[str]:
    return _html(confirm_page(token, deps().links.read(token)))


@app.get("/preferences", access=Access.public(LINKS), summary="The preference centre page", responses=HTML)
def get_preferences(token: LinkTokenQuery) -> Response[str]:
    return _html(deps().links.page(token))


@app.post(
    "/preferences",
    access=Access.public(LINKS),
    summary="Save the preference centre's form (application/x-www-form-urlencoded, `consent` per ticked box)",
    responses=HTML,
)
def post_preferences(token: LinkTokenQuery) -> Response[str]:
    raw = app.body_bytes(limit=64 * 1024).decode("utf-8", errors="replace")
    form = parse_qs(raw, max_num_fields=200)
    return _html(deps().links.update(token, form, correlation_id=app.correlation_id, **_caller()))


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: Deps | None = None) -> dict[str, Any]:
    app.append_context(deps=injected or default_deps())
    return app.resolve(event, context)
