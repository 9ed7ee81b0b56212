"""The emulated messaging services on moto's own server, and the local cloud's messaging inspector.

moto's server is one WSGI application (`DomainDispatcherApplication`) that picks a moto backend
for each request. `install()` puts a router in front of it, in this process:

- a request signed for `sms-voice` (End User Messaging SMS and voice) or `social-messaging`
  (End User Messaging Social) goes to its `ServiceApp`, so a boto3 client of
  `pinpoint-sms-voice-v2` or `socialmessaging` with `endpoint_url` = the moto server works as
  against AWS;
- a request under `/_ecrm/messaging/` goes to the inspector: JSON that a test or `ecrm local sms|
  push|whatsapp` reads (what was sent, per number or endpoint) and the simulations AWS has no API
  for (a reply from a phone, a token the provider refuses, a linked WhatsApp account, a delivery
  outcome, a WhatsApp status);
- anything else is moto's, untouched.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

from infra.local.messaging import sms_voice, sns_push, social
from infra.local.messaging.protocol import ServiceApp, credential_scope_service
from infra.local.messaging.timekeeping import now

INSPECTOR_PREFIX = "/_ecrm/messaging"
SIGNING_NAMES = {"sms-voice": sms_voice, "social-messaging": social}

_lock = threading.Lock()
_installed = False
_moto_call: Callable[..., Any] | None = None
_apps: dict[str, ServiceApp] = {}


def install() -> None:
    """Route the emulated services and the inspector in moto's server (idempotent, process-wide)."""
    global _installed, _moto_call
    with _lock:
        if _installed:
            return
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication

        for signing_name, module in SIGNING_NAMES.items():
            _apps[signing_name] = ServiceApp(module.SERVICE, module.HANDLERS)
        _moto_call = DomainDispatcherApplication.__call__
        DomainDispatcherApplication.__call__ = _route  # type: ignore[method-assign,assignment]
        sns_push.install()
        _installed = True


def _route(dispatcher: Any, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    assert _moto_call is not None
    if environ.get("PATH_INFO", "").startswith(INSPECTOR_PREFIX + "/"):
        return inspector(environ, start_response)
    app = _apps.get(credential_scope_service(environ) or "")
    if app is not None:
        return app(environ, start_response)
    return _moto_call(dispatcher, environ, start_response)


# -- the inspector -------------------------------------------------------------------------------
class InspectorError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def inspector(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    method = environ["REQUEST_METHOD"]
    route = environ["PATH_INFO"][len(INSPECTOR_PREFIX) :]
    query = {k: v[0] for k, v in urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).items()}
    length = int(environ.get("CONTENT_LENGTH") or 0)
    try:
        body = json.loads(environ["wsgi.input"].read(length) or b"{}") if length else {}
        handler = _ROUTES.get((method, route))
        if handler is None:
            raise InspectorError(404, f"no {method} {INSPECTOR_PREFIX}{route}")
        status, result = 200, handler(query, body)
    except InspectorError as exc:
        status, result = exc.status, {"error": str(exc)}
    except (LookupError, ValueError) as exc:
        status, result = 400, {"error": str(exc.args[0]) if exc.args else str(exc)}
    payload = json.dumps(result, default=_json_default).encode()
    start_response(
        f"{status} {'OK' if status == 200 else 'ERROR'}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
    )
    return [payload]


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"{type(value).__name__} is not JSON")


def _account(query: dict[str, Any], body: dict[str, Any]) -> tuple[str, str]:
    from moto.core import DEFAULT_ACCOUNT_ID

    return (
        body.get("account") or query.get("account") or DEFAULT_ACCOUNT_ID,
        body.get("region") or query.get("region") or "us-east-1",
    )


def _required(body: dict[str, Any], *names: str) -> list[Any]:
    missing = [n for n in names if not body.get(n)]
    if missing:
        raise InspectorError(400, f"missing {', '.join(missing)}")
    return [body[n] for n in names]


def _sms(query: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """Every SMS and voice message sent (SNS and End User Messaging), oldest first; `number` filters."""
    number = query.get("number")
    texts = sns_push.sms_messages(number)
    for acct in sms_voice.accounts():
        for record in list(acct.messages):
            if number is None or record["destinationPhoneNumber"] == number:
                texts.append(
                    {
                        "service": "sms-voice",
                        "account": acct.account,
                        "region": acct.region,
                        **{k: v for k, v in record.items() if k not in {"requestedAt"}},
                    }
                )
    texts.sort(key=lambda r: r.get("sentAt", ""))
    inbound = [
        {"account": a.account, "region": a.region, **m}
        for a in sms_voice.accounts()
        for m in list(a.inbound)
        if number is None or number in (m["originationNumber"], m["destinationNumber"])
    ]
    return {"messages": texts, "inbound": inbound}


def _reply(query: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    sender, to, text = _required(body, "from", "to", "body")
    account_id, region = _account(query, body)
    return sms_voice.receive(account_id, region, sender=sender, to=to, body=text)


def _outcome(query: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    (number,) = _required(body, "number")
    account_id, region = _account(query, body)
    sms_voice.simulate_outcome(account_id, region, number, body.get("eventType"))
    return {"number": number, "eventType": body.get("eventType")}


def _push(query: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    return {"endpoints": sns_push.push_messages(query.get("endpoint"))}


def _invalidate(query: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    (endpoint,) = _required(body, "endpointArn")
    sns_push.invalidate_token(endpoint)
    return {"endpointArn": endpoint, "tokenValid": False}


def _whatsapp(query: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    number = query.get("number")
    sent = [
        {"account": a.account, "region": a.region, **m}
        for a in social.accounts()
        for m in list(a.messages)
        if number is None or number in (m["to"], m["from"], "+" + str(m["to"]).lstrip("+"))
    ]
    inbound = [
        {"account": a.account, "region": a.region, **m}
        for a in social.accounts()
        for m in list(a.inbound)
        if number is None or number in (m["to"], "+" + m["from"])
    ]
    return {"messages": sent, "inbound": inbound}


def _link(query: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    name, numbers = _required(body, "wabaName", "phoneNumbers")
    account_id, region = _account(query, body)
    waba = social.link_account(
        account_id,
        region,
        waba_name=name,
        phone_numbers=list(numbers),
        event_destination_arn=body.get("eventDestinationArn"),
        templates=body.get("templates"),
    )
    return {k: v for k, v in waba.items() if k != "templates"} | {
        "templates": [{k: v for k, v in t.items() if k != "definition"} for t in waba["templates"].values()]
    }


def _whatsapp_status(query: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    message_id, status = _required(body, "messageId", "status")
    account_id, region = _account(query, body)
    social.set_status(account_id, region, message_id, status, error_code=body.get("errorCode"))
    return {"messageId": message_id, "status": status}


def _whatsapp_reply(query: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    sender, to, text = _required(body, "from", "to", "body")
    account_id, region = _account(query, body)
    return social.receive(account_id, region, sender=sender, to=to, text=text, name=body.get("name", ""))


def _reset(query: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    sms_voice.reset()
    social.reset()
    sns_push.reset()
    return {"reset": now().isoformat()}


_ROUTES: dict[tuple[str, str], Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]] = {
    ("GET", "/sms"): _sms,
    ("POST", "/sms/reply"): _reply,
    ("POST", "/sms/outcome"): _outcome,
    ("GET", "/push"): _push,
    ("POST", "/push/invalidate-token"): _invalidate,
    ("GET", "/whatsapp"): _whatsapp,
    ("POST", "/whatsapp/accounts"): _link,
    ("POST", "/whatsapp/status"): _whatsapp_status,
    ("POST", "/whatsapp/reply"): _whatsapp_reply,
    ("POST", "/reset"): _reset,
}
