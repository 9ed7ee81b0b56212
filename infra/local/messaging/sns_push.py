"""SNS SMS and mobile push as the broadcast engine sees them: readable, and tokens that go bad.

moto 5.2.5 keeps every SMS published to an E.164 number (`SNSBackend.sms_messages`) and every
message published to a platform endpoint (`PlatformEndpoint.messages`), and refuses a publish to a
disabled endpoint with `EndpointDisabled`, as SNS does. This module reads them back (per number,
per endpoint) and adds what moto lacks: the provider telling SNS a token is no longer valid.

`invalidate_token(endpoint_arn)` is APNs or FCM answering "unregistered" from then on. As SNS does
then, the next publish to the endpoint is accepted (SNS only learns from the provider after
accepting it), is not delivered, turns the endpoint's `Enabled` attribute to `false`, and sends
the application's event notifications: `EventDeliveryFailure` (FailureType
`InvalidPlatformToken`) and `EventEndpointUpdated`, to the topics the platform application's
attributes name. Every publish after that is refused with `EndpointDisabled`.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

from infra.local.messaging import destinations
from infra.local.messaging.timekeeping import now

INVALID_TOKEN_MESSAGE = "Platform token associated with the endpoint is not valid"  # noqa: S105 - SNS's words
_invalid_tokens: set[str] = set()  # endpoint ARNs whose token the provider now refuses
_failed: dict[str, list[dict[str, Any]]] = {}  # endpoint ARN -> publishes the provider refused
_lock = threading.Lock()
_installed = False
_moto_publish: Callable[..., str] | None = None


def install() -> None:
    """Make a platform endpoint's publish honour `invalidate_token` (idempotent, process-wide)."""
    global _installed, _moto_publish
    with _lock:
        if _installed:
            return
        from moto.sns.models import PlatformEndpoint

        _moto_publish = PlatformEndpoint.publish
        PlatformEndpoint.publish = _publish  # type: ignore[method-assign,assignment]
        _installed = True


def reset() -> None:
    with _lock:
        _invalid_tokens.clear()
        _failed.clear()


def _publish(endpoint: Any, message: str) -> str:
    assert _moto_publish is not None
    with _lock:
        invalid = endpoint.arn in _invalid_tokens and endpoint.enabled
    if not invalid:
        return _moto_publish(endpoint, message)
    message_id = str(uuid.uuid4())
    endpoint.attributes["Enabled"] = False
    with _lock:
        _failed.setdefault(endpoint.arn, []).append({"messageId": message_id, "message": message})
    _notify_application(endpoint, message_id)
    return message_id


def _notify_application(endpoint: Any, message_id: str) -> None:
    application = endpoint.application
    at = now()
    time = at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
    app_label = f"{application.name} ({application.platform})"
    failure = {
        "DeliveryAttempts": 1,
        "EndpointArn": endpoint.arn,
        "EventType": "DeliveryFailure",
        "FailureMessage": INVALID_TOKEN_MESSAGE,
        "FailureType": "InvalidPlatformToken",
        "MessageId": message_id,
        "Resource": application.arn,
        "Service": "SNS",
        "Time": time,
    }
    updated = {
        "EndpointArn": endpoint.arn,
        "EventType": "EndpointUpdated",
        "Resource": application.arn,
        "Service": "SNS",
        "Time": time,
        "Enabled": "false",
    }
    for attribute, event in (("EventDeliveryFailure", failure), ("EventEndpointUpdated", updated)):
        topic = application.attributes.get(attribute)
        if topic:
            with contextlib.suppress(destinations.DestinationMissing):  # SNS drops an event whose topic is gone
                destinations.publish_to_topic(
                    topic, json.dumps(event), subject=f"{event['EventType']} event for app {app_label}"
                )


def invalidate_token(endpoint_arn: str) -> None:
    """From now on the provider refuses the endpoint's token (see the module docstring)."""
    _endpoint(endpoint_arn)
    with _lock:
        _invalid_tokens.add(endpoint_arn)


def _endpoint(endpoint_arn: str) -> Any:
    from moto.sns.models import sns_backends

    parts = endpoint_arn.split(":")
    if len(parts) < 6:
        raise LookupError(f"{endpoint_arn!r} is not an endpoint ARN")
    endpoint = sns_backends[parts[4]][parts[3]].platform_endpoints.get(endpoint_arn)
    if endpoint is None:
        raise LookupError(f"no SNS platform endpoint {endpoint_arn}")
    return endpoint


def sms_messages(number: str | None = None) -> list[dict[str, Any]]:
    """SMS published through SNS to E.164 numbers, oldest first (all accounts and regions of moto)."""
    from moto.sns.models import sns_backends

    found = []
    for account_id, regions in list(sns_backends.items()):
        for region, backend in list(regions.items()):
            for message_id, (phone, text) in list(backend.sms_messages.items()):
                if number is None or phone == number:
                    found.append(
                        {
                            "service": "sns",
                            "messageId": message_id,
                            "destinationPhoneNumber": phone,
                            "messageBody": text,
                            "account": account_id,
                            "region": region,
                        }
                    )
    return found


def push_messages(endpoint_arn: str | None = None) -> list[dict[str, Any]]:
    """Messages published to platform endpoints, per endpoint, with what the device would receive."""
    from moto.sns.models import sns_backends

    found = []
    for _, regions in list(sns_backends.items()):
        for _, backend in list(regions.items()):
            for arn, endpoint in list(backend.platform_endpoints.items()):
                if endpoint_arn is not None and arn != endpoint_arn:
                    continue
                with _lock:
                    failed = list(_failed.get(arn, []))
                    token_valid = arn not in _invalid_tokens
                found.append(
                    {
                        "endpointArn": arn,
                        "platform": endpoint.application.platform,
                        "application": endpoint.application.name,
                        "token": endpoint.token,
                        "enabled": bool(endpoint.enabled),
                        "tokenValid": token_valid,
                        "customUserData": endpoint.custom_user_data,
                        "messages": [
                            {
                                "messageId": k,
                                "message": v,
                                "payload": delivered_payload(v, endpoint.application.platform),
                            }
                            for k, v in list(endpoint.messages.items())
                        ],
                        "failed": failed,
                    }
                )
    return found


def delivered_payload(message: str, platform: str) -> str:
    """What the provider receives: with `MessageStructure=json` (a JSON object with a `default` key),
    the platform's own key (`APNS`, `APNS_SANDBOX`, `GCM`, ...) or else `default`, as SNS picks it."""
    try:
        structured = json.loads(message)
    except ValueError:
        return message
    if not isinstance(structured, dict) or "default" not in structured:
        return message
    return str(structured.get(platform, structured["default"]))
