"""`LocalMessaging`: what tests and `ecrm local sms|push|whatsapp` use to read and drive the local
cloud's messaging (the inspector of `server`, over HTTP on 127.0.0.1; no moto import)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

INSPECTOR_PREFIX = "/_ecrm/messaging"


class MessagingError(Exception):
    """The local cloud refused a messaging request (an unknown number, endpoint or message)."""


class LocalMessaging:
    def __init__(self, endpoint_url: str, *, account: str | None = None, region: str | None = None) -> None:
        self.base = endpoint_url.rstrip("/") + INSPECTOR_PREFIX
        self.scope = {k: v for k, v in (("account", account), ("region", region)) if v}

    # -- reading ------------------------------------------------------------------------------
    def sms(self, number: str | None = None) -> list[dict[str, Any]]:
        """Texts and calls sent (SNS publishes and End User Messaging SMS/voice), oldest first."""
        return list(self._get("/sms", number=number)["messages"])

    def sms_inbound(self, number: str | None = None) -> list[dict[str, Any]]:
        return list(self._get("/sms", number=number)["inbound"])

    def push(self, endpoint_arn: str | None = None) -> list[dict[str, Any]]:
        """Platform endpoints with the messages published to each."""
        return list(self._get("/push", endpoint=endpoint_arn)["endpoints"])

    def whatsapp(self, number: str | None = None) -> list[dict[str, Any]]:
        return list(self._get("/whatsapp", number=number)["messages"])

    def whatsapp_inbound(self, number: str | None = None) -> list[dict[str, Any]]:
        return list(self._get("/whatsapp", number=number)["inbound"])

    # -- simulating ---------------------------------------------------------------------------
    def reply_sms(self, *, sender: str, to: str, body: str) -> dict[str, Any]:
        """A text from the phone `sender` to the origination number `to` (STOP, HELP, ...)."""
        return self._post("/sms/reply", {"from": sender, "to": to, "body": body})

    def sms_outcome(self, number: str, event_type: str | None) -> dict[str, Any]:
        """Later sends to `number` end with `event_type` (TEXT_BLOCKED, VOICE_NO_ANSWER, ...; None: delivered)."""
        return self._post("/sms/outcome", {"number": number, "eventType": event_type})

    def invalidate_push_token(self, endpoint_arn: str) -> dict[str, Any]:
        """The provider (APNs, FCM) refuses the endpoint's token from now on."""
        return self._post("/push/invalidate-token", {"endpointArn": endpoint_arn})

    def link_whatsapp_account(
        self,
        *,
        waba_name: str,
        phone_numbers: list[str],
        event_destination_arn: str | None = None,
        templates: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Link a WhatsApp Business Account, as Meta's sign-up does in AWS; templates are Meta's JSON."""
        body: dict[str, Any] = {"wabaName": waba_name, "phoneNumbers": phone_numbers, "templates": templates or []}
        if event_destination_arn:
            body["eventDestinationArn"] = event_destination_arn
        return self._post("/whatsapp/accounts", body)

    def whatsapp_status(self, message_id: str, status: str, *, error_code: int | None = None) -> dict[str, Any]:
        return self._post("/whatsapp/status", {"messageId": message_id, "status": status, "errorCode": error_code})

    def reply_whatsapp(self, *, sender: str, to: str, body: str, name: str = "") -> dict[str, Any]:
        return self._post("/whatsapp/reply", {"from": sender, "to": to, "body": body, "name": name})

    def reset(self) -> None:
        self._post("/reset", {})

    # -- HTTP ---------------------------------------------------------------------------------
    def _get(self, route: str, **query: str | None) -> dict[str, Any]:
        params = {k: v for k, v in {**self.scope, **query}.items() if v}
        url = self.base + route + ("?" + urllib.parse.urlencode(params) if params else "")
        return self._call(urllib.request.Request(url))  # noqa: S310 - the local cloud's http URL

    def _post(self, route: str, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps({**self.scope, **body}).encode()
        request = urllib.request.Request(  # noqa: S310 - the local cloud's http URL
            self.base + route, data=data, method="POST", headers={"Content-Type": "application/json"}
        )
        return self._call(request)

    @staticmethod
    def _call(request: urllib.request.Request) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the local cloud's URL
                return dict(json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error", str(exc))
            except ValueError:
                message = str(exc)
            raise MessagingError(message) from None
