"""AWS End User Messaging Social (`socialmessaging`, WhatsApp), which moto 5.2.5 does not have.

A WhatsApp Business Account (WABA) is linked in AWS through Meta's embedded sign-up, which no
local run can do: `link_account` links one here (its phone numbers, an event destination, approved
templates), and then the service's own operations answer in its shapes:

- `ListLinkedWhatsAppBusinessAccounts`, `GetLinkedWhatsAppBusinessAccount`,
  `GetLinkedWhatsAppBusinessAccountPhoneNumber`, `PutWhatsAppBusinessAccountEventDestinations`,
  `DisassociateWhatsAppBusinessAccount`;
- templates: `CreateWhatsAppMessageTemplate` (Meta's template JSON; APPROVED at once here, where
  Meta reviews it first), `ListWhatsAppMessageTemplates`, `GetWhatsAppMessageTemplate`,
  `DeleteWhatsAppMessageTemplate`;
- `SendWhatsAppMessage`: `message` is the WhatsApp Cloud API request JSON, kept whole; it must be
  a JSON object with `messaging_product` "whatsapp", `to` and `type`, and a `template` message
  must name an APPROVED template of the account in its language. The answer is the AWS message id.
- events, as AWS relays Meta's webhooks to the WABA's event destination (an SNS topic): the
  documented envelope (`context` with the Meta WABA and phone number ids and their ARNs,
  `whatsAppWebhookEntry` as a JSON string, `aws_account_id`, `message_timestamp`, `messageId`),
  whose entry holds Meta's `statuses` (sent, delivered; read or failed when `set_status` says so; each
  with the request's `biz_opaque_callback_data`, as Meta returns it) or an inbound customer message
  (`receive`).

Deliberate differences: statuses are published before the send returns; no media, flows, calls.
"""

from __future__ import annotations

import json
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from infra.local.messaging import destinations
from infra.local.messaging.protocol import Handler, RequestContext, ServiceError
from infra.local.messaging.timekeeping import now

SERVICE = "socialmessaging"


@dataclass
class Account:
    account: str
    region: str
    wabas: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> linked account
    phone_numbers: dict[str, dict[str, Any]] = field(default_factory=dict)  # phone-number-id -> number
    messages: list[dict[str, Any]] = field(default_factory=list)
    inbound: list[dict[str, Any]] = field(default_factory=list)

    def arn(self, kind: str, resource_id: str) -> str:
        return f"arn:aws:social-messaging:{self.region}:{self.account}:{kind}/{resource_id}"


_lock = threading.RLock()
_accounts: dict[tuple[str, str], Account] = {}


def account(account_id: str, region: str) -> Account:
    with _lock:
        return _accounts.setdefault((account_id, region), Account(account_id, region))


def accounts() -> list[Account]:
    with _lock:
        return list(_accounts.values())


def reset() -> None:
    with _lock:
        _accounts.clear()


def _not_found(what: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", f"{what} not found", status=404)


def _meta_id() -> str:
    return str(10**14 + secrets.randbelow(9 * 10**14))


# -- linking (what Meta's embedded sign-up does in AWS) ------------------------------------------
def link_account(
    account_id: str,
    region: str,
    *,
    waba_name: str,
    phone_numbers: list[str],
    event_destination_arn: str | None = None,
    templates: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Link a WABA with `phone_numbers` (E.164); the account as `GetLinkedWhatsAppBusinessAccount` shows it."""
    with _lock:
        acct = account(account_id, region)
        waba_hex = uuid.uuid4().hex
        waba: dict[str, Any] = {
            "arn": acct.arn("waba", waba_hex),
            "id": f"waba-{waba_hex}",
            "wabaId": _meta_id(),
            "registrationStatus": "COMPLETE",
            "linkDate": now(),
            "wabaName": waba_name,
            "eventDestinations": ([{"eventDestinationArn": event_destination_arn}] if event_destination_arn else []),
            "phoneNumbers": [],
            "templates": {},
        }
        for number in phone_numbers:
            number_hex = uuid.uuid4().hex
            record = {
                "arn": acct.arn("phone-number-id", number_hex),
                "phoneNumber": number,
                "phoneNumberId": f"phone-number-id-{number_hex}",
                "metaPhoneNumberId": _meta_id(),
                "displayPhoneNumberName": waba_name,
                "displayPhoneNumber": number,
                "qualityRating": "GREEN",
                "waba": waba["id"],
            }
            waba["phoneNumbers"].append(record)
            acct.phone_numbers[record["phoneNumberId"]] = record
        acct.wabas[waba["id"]] = waba
        for template in templates or []:
            _add_template(waba, template, status=template.get("status", "APPROVED"))
        return waba


def _add_template(waba: dict[str, Any], definition: dict[str, Any], *, status: str) -> dict[str, Any]:
    template = {
        "templateName": definition["name"],
        "metaTemplateId": _meta_id(),
        "templateStatus": status,
        "templateLanguage": definition.get("language", "en_US"),
        "templateCategory": definition.get("category", "MARKETING"),
        "definition": {k: v for k, v in definition.items() if k != "status"},
    }
    waba["templates"][template["metaTemplateId"]] = template
    return template


def _waba(acct: Account, key: str) -> dict[str, Any]:
    for waba in acct.wabas.values():
        if key in (waba["id"], waba["arn"]):
            return waba
    raise _not_found(f"WhatsApp Business Account {key}")


def _phone(acct: Account, key: str) -> dict[str, Any]:
    for number in acct.phone_numbers.values():
        if key in (number["phoneNumberId"], number["arn"]):
            return number
    raise _not_found(f"Phone number {key}")


def list_linked_accounts(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    with _lock:
        return {"linkedAccounts": list(account(ctx.account, ctx.region).wabas.values())}


def get_linked_account(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    with _lock:
        return {"account": _waba(account(ctx.account, ctx.region), params["id"])}


def get_linked_phone_number(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    with _lock:
        number = _phone(account(ctx.account, ctx.region), params["id"])
        return {"phoneNumber": number, "linkedWhatsAppBusinessAccountId": number["waba"]}


def put_event_destinations(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    with _lock:
        waba = _waba(account(ctx.account, ctx.region), params["id"])
        waba["eventDestinations"] = params["eventDestinations"]
        return {}


def disassociate_account(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    with _lock:
        acct = account(ctx.account, ctx.region)
        waba = _waba(acct, params["id"])
        for number in waba["phoneNumbers"]:
            acct.phone_numbers.pop(number["phoneNumberId"], None)
        del acct.wabas[waba["id"]]
        return {}


# -- templates -----------------------------------------------------------------------------------
def create_template(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    with _lock:
        waba = _waba(account(ctx.account, ctx.region), params["id"])
        definition = _json_object(params["templateDefinition"], "templateDefinition")
        if not definition.get("name") or not definition.get("language") or not definition.get("category"):
            raise ServiceError("InvalidParametersException", "A template needs name, language and category")
        template = _add_template(waba, definition, status="APPROVED")
        return {
            "metaTemplateId": template["metaTemplateId"],
            "templateStatus": template["templateStatus"],
            "category": template["templateCategory"],
        }


def list_templates(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    with _lock:
        waba = _waba(account(ctx.account, ctx.region), params["id"])
        return {"templates": list(waba["templates"].values())}


def get_template(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    with _lock:
        waba = _waba(account(ctx.account, ctx.region), params["id"])
        for template in waba["templates"].values():
            if template["metaTemplateId"] == params.get("metaTemplateId") or (
                template["templateName"] == params.get("templateName")
                and template["templateLanguage"] == params.get("templateLanguageCode", template["templateLanguage"])
            ):
                meta = {
                    "id": template["metaTemplateId"],
                    "status": template["templateStatus"],
                    **template["definition"],
                }
                return {"template": json.dumps(meta)}
        raise _not_found("Template")


def delete_template(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    with _lock:
        waba = _waba(account(ctx.account, ctx.region), params["id"])
        doomed = [
            k
            for k, t in waba["templates"].items()
            if k == params.get("metaTemplateId") or t["templateName"] == params.get("templateName")
        ]
        if not doomed:
            raise _not_found("Template")
        for key in doomed:
            del waba["templates"][key]
        return {}


# -- sending and events --------------------------------------------------------------------------
def _json_object(blob: bytes, member: str) -> dict[str, Any]:
    try:
        value = json.loads(blob)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ServiceError("ValidationException", f"{member} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ServiceError("ValidationException", f"{member} must be a JSON object")
    return value


def send_message(params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    with _lock:
        acct = account(ctx.account, ctx.region)
        number = _phone(acct, params["originationPhoneNumberId"])
        message = _json_object(params["message"], "message")
        missing = [k for k in ("messaging_product", "to", "type") if not message.get(k)]
        if missing:
            raise ServiceError("ValidationException", f"message is missing {', '.join(missing)}")
        if message["messaging_product"] != "whatsapp":
            raise ServiceError("ValidationException", "message.messaging_product must be 'whatsapp'")
        waba = acct.wabas[number["waba"]]
        if message["type"] == "template":
            _check_template(waba, message.get("template") or {})
        record = {
            "messageId": str(uuid.uuid4()),
            "wamid": "wamid." + secrets.token_urlsafe(36),
            "originationPhoneNumberId": number["phoneNumberId"],
            "from": number["phoneNumber"],
            "to": message["to"],
            "type": message["type"],
            "message": message,
            "metaApiVersion": params["metaApiVersion"],
            "statuses": [],
            "sentAt": now().isoformat(),
        }
        acct.messages.append(record)
    for status in ("sent", "delivered"):
        _publish_status(acct, record, status)
    return {"messageId": record["messageId"]}


def _check_template(waba: dict[str, Any], template: dict[str, Any]) -> None:
    name, language = template.get("name"), (template.get("language") or {}).get("code")
    for known in waba["templates"].values():
        if known["templateName"] == name and known["templateLanguage"] == language:
            if known["templateStatus"] != "APPROVED":
                raise ServiceError("ValidationException", f"Template {name} ({language}) is {known['templateStatus']}")
            return
    raise ServiceError(
        "ValidationException", f"(#132001) Template name does not exist in the translation: {name} ({language})"
    )


def set_status(account_id: str, region: str, message_id: str, status: str, *, error_code: int | None = None) -> None:
    """Publish a later status of a sent message (`read`, `failed`, ...) as Meta's webhook relayed by AWS."""
    with _lock:
        acct = account(account_id, region)
        record = next((m for m in acct.messages if message_id in (m["messageId"], m["wamid"])), None)
        if record is None:
            raise LookupError(f"no WhatsApp message {message_id}")
    _publish_status(acct, record, status, error_code=error_code)


def _publish_status(acct: Account, record: dict[str, Any], status: str, *, error_code: int | None = None) -> None:
    number = acct.phone_numbers[record["originationPhoneNumberId"]]
    entry_status: dict[str, Any] = {
        "id": record["wamid"],
        "status": status,
        "timestamp": str(int(now().timestamp())),
        "recipient_id": str(record["to"]).lstrip("+"),
    }
    callback = record["message"].get("biz_opaque_callback_data")
    if callback:  # Meta returns the sender's opaque data in every status of the message
        entry_status["biz_opaque_callback_data"] = callback
    if status == "failed":
        entry_status["errors"] = [{"code": error_code or 131026, "title": "Message undeliverable"}]
    elif status in {"sent", "delivered"}:
        entry_status["pricing"] = {"billable": True, "pricing_model": "CBP", "category": "marketing"}
    with _lock:
        record["statuses"].append(status)
    _publish(acct, number, {"statuses": [entry_status]}, record["messageId"])


def receive(account_id: str, region: str, *, sender: str, to: str, text: str, name: str = "") -> dict[str, Any]:
    """A customer's text message to the linked number `to`, published as AWS relays Meta's webhook."""
    with _lock:
        acct = account(account_id, region)
        number = next((n for n in acct.phone_numbers.values() if to in (n["phoneNumber"], n["phoneNumberId"])), None)
        if number is None:
            raise LookupError(f"{to} is not a linked WhatsApp phone number")
        wa_id = sender.lstrip("+")
        message = {
            "from": wa_id,
            "id": "wamid." + secrets.token_urlsafe(36),
            "timestamp": str(int(now().timestamp())),
            "type": "text",
            "text": {"body": text},
        }
        acct.inbound.append({"to": number["phoneNumber"], **message})
    value = {"contacts": [{"profile": {"name": name or wa_id}, "wa_id": wa_id}], "messages": [message]}
    _publish(acct, number, value, str(uuid.uuid4()))
    return message


def _publish(acct: Account, number: dict[str, Any], value: dict[str, Any], message_id: str) -> None:
    waba = acct.wabas[number["waba"]]
    entry = {
        "id": waba["wabaId"],
        "changes": [
            {
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {
                        "display_phone_number": number["displayPhoneNumber"].lstrip("+"),
                        "phone_number_id": number["metaPhoneNumberId"],
                    },
                    **value,
                },
                "field": "messages",
            }
        ],
    }
    at = now()
    event = {
        "context": {
            "MetaWabaIds": [{"wabaId": waba["wabaId"], "arn": waba["arn"]}],
            "MetaPhoneNumberIds": [{"metaPhoneNumberId": number["metaPhoneNumberId"], "arn": number["arn"]}],
        },
        "whatsAppWebhookEntry": json.dumps(entry),
        "aws_account_id": acct.account,
        "message_timestamp": at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond:06d}000Z",
        "messageId": message_id,
    }
    for destination in waba["eventDestinations"]:
        arn = destination["eventDestinationArn"]
        if arn.startswith("arn:aws:sns:"):
            try:
                destinations.publish_to_topic(arn, json.dumps(event))
            except destinations.DestinationMissing as exc:
                import logging

                logging.getLogger(__name__).warning("End User Messaging Social event destination: %s", exc)


HANDLERS: dict[str, Handler] = {
    "ListLinkedWhatsAppBusinessAccounts": list_linked_accounts,
    "GetLinkedWhatsAppBusinessAccount": get_linked_account,
    "GetLinkedWhatsAppBusinessAccountPhoneNumber": get_linked_phone_number,
    "PutWhatsAppBusinessAccountEventDestinations": put_event_destinations,
    "DisassociateWhatsAppBusinessAccount": disassociate_account,
    "CreateWhatsAppMessageTemplate": create_template,
    "ListWhatsAppMessageTemplates": list_templates,
    "GetWhatsAppMessageTemplate": get_template,
    "DeleteWhatsAppMessageTemplate": delete_template,
    "SendWhatsAppMessage": send_message,
}
