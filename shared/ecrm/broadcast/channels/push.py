"""Mobile push through SNS platform endpoints (APNs and FCM), and device registration.

One publish with `MessageStructure=json`: SNS hands each platform its own key, `APNS` /
`APNS_SANDBOX` (an `aps` alert) and `GCM` (an FCM HTTP v1 message under `fcmV1Message`), `default`
for any other. Our message id rides in the payload's data, so the app can report an open with it.
An endpoint SNS has disabled (the provider refused its token) or that no longer exists is a
permanent error: the device is gone until the app registers again.

`DeviceRegistrar` creates (or revives) the platform endpoint of a device token, as SNS documents it:
CreatePlatformEndpoint is idempotent for the same token and attributes; when the token's endpoint
exists with other attributes, its ARN is read from the error and its attributes are set, enabled.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from ecrm.broadcast.channels.base import ChannelError, OutboundMessage, SendResult, aws_error, content_text, require

_ENDPOINT_ARN = re.compile(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:endpoint/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/[\w-]+")
_EXISTING_ARN = re.compile(r"Endpoint (arn:aws[a-z-]*:sns:\S+?) already exists")
_GONE = {"EndpointDisabled", "EndpointDisabledException", "NotFound", "NotFoundException"}
_BAD_REQUEST = {"InvalidParameter", "InvalidParameterException", "InvalidParameterValue", "ValidationException"}


def payload(message: OutboundMessage) -> dict[str, str]:
    """The SNS JSON message: one payload per platform, each a JSON string."""
    body = content_text(message, "body") or ""
    title = content_text(message, "title", required=False)
    extra = message.content.get("data") or {}
    require(isinstance(extra, Mapping), "push content data must be an object", code="invalid_content")
    data = {str(k): str(v) for k, v in extra.items()} | {"message_id": message.message_id}
    alert: dict[str, str] = {"body": body} | ({"title": title} if title else {})
    apns = json.dumps({"aps": {"alert": alert, "sound": "default"}, **data}, ensure_ascii=False)
    fcm = json.dumps({"fcmV1Message": {"message": {"notification": alert, "data": data}}}, ensure_ascii=False)
    return {"default": body, "APNS": apns, "APNS_SANDBOX": apns, "GCM": fcm}


def classify(exc: Exception) -> ChannelError:
    found = aws_error(exc)
    if found is None:
        return ChannelError(f"push: {type(exc).__name__}: {exc}", permanent=False)
    code, text, _ = found
    label = f"SNS: {text or code}"
    if code in _GONE:
        return ChannelError(label, permanent=True, code="endpoint_disabled" if "Disabled" in code else code)
    if code in _BAD_REQUEST:
        return ChannelError(label, permanent=True, code=code)
    if "Throttl" in code:
        return ChannelError(label, permanent=False, throttled=True, code=code)
    # PlatformApplicationDisabled, KMS, authorization, 5xx: our account's state, retried then dead-lettered.
    return ChannelError(label, permanent=False, code=code)


class PushAdapter:
    channel = "push"

    def __init__(self, client: Callable[[], Any]) -> None:
        self._client = client

    def send(self, message: OutboundMessage) -> SendResult:
        require(bool(_ENDPOINT_ARN.fullmatch(message.address)), "not an SNS endpoint ARN", code="invalid_address")
        request = {
            "TargetArn": message.address,
            "MessageStructure": "json",
            "Message": json.dumps(payload(message), ensure_ascii=False),
        }
        try:
            response = self._client().publish(**request)
        except Exception as exc:  # every provider failure is classified
            raise classify(exc) from exc
        return SendResult(provider_message_id=response.get("MessageId"), detail={"endpoint": message.address})


class DeviceRegistrar:
    """Platform endpoints for device tokens, one per token, enabled again when the app registers it anew."""

    def __init__(self, client: Callable[[], Any], applications: Mapping[str, str]) -> None:
        self._client = client
        self.applications = dict(applications)

    def register(self, platform: str, token: str, *, customer_id: str) -> str:
        """The endpoint ARN for `token` on `platform` ("apns" or "fcm"), created or updated and enabled."""
        application = self.applications.get(platform)
        if application is None:
            raise ValueError(f"no push application is configured for {platform!r}")
        if not token or len(token) > 4096:
            raise ValueError("a device token is 1 to 4096 characters")
        client = self._client()
        try:
            arn = str(
                client.create_platform_endpoint(
                    PlatformApplicationArn=application, Token=token, CustomUserData=customer_id
                )["EndpointArn"]
            )
        except Exception as exc:  # only "already exists with other attributes" is recovered
            found = aws_error(exc)
            existing = _EXISTING_ARN.search(found[1]) if found and found[0] == "InvalidParameter" else None
            if existing is None:
                raise
            arn = existing.group(1)
        attributes = client.get_endpoint_attributes(EndpointArn=arn).get("Attributes", {})
        wanted = {"Token": token, "Enabled": "true", "CustomUserData": customer_id}
        if any(attributes.get(k) != v for k, v in wanted.items()):
            client.set_endpoint_attributes(EndpointArn=arn, Attributes=wanted)
        return arn

    def unregister(self, endpoint_arn: str) -> None:
        """Forget a device (the customer signed out, the app was removed): DeleteEndpoint is idempotent."""
        self._client().delete_endpoint(EndpointArn=endpoint_arn)
