"""Every broadcast channel live on the local cloud: voice, WhatsApp and push configured against the emulations.

In AWS these channels need resources bought or linked outside the stack (an origination identity, a
WhatsApp Business Account's phone number, APNs and FCM credentials in SNS platform applications), named to
the CDK app by context keys; without them the engine leaves the channel out. The local cloud synthesizes
with `CONTEXT` so every channel's sender exists, then `configure` creates the resources in the emulations
and hands their ids to the functions:

- the platform applications' ARNs are SNS's own naming (`app/<platform>/<name>`), so the context carries
  the real ones and `configure` creates applications of those names in the local SNS;
- an origination number and a WhatsApp phone number id are minted by the emulations when requested, so
  the context carries a placeholder and `configure` writes the minted id into every function's
  environment before any function runs;
- webhooks may be plain http to 127.0.0.1 (a receiver in the test), which only the local cloud allows.

`WHATSAPP_TEMPLATE` is the approved template the linked account holds, for requests to name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from infra.local.runtime import FunctionRuntime
from infra.local.template import ACCOUNT_ID, REGION

VOICE_PLACEHOLDER = "local-voice-origination"
WHATSAPP_PLACEHOLDER = "local-whatsapp-phone-number-id"
PUSH_APPLICATIONS = {
    "apns": ("APNS", "ecrm-local-apns"),
    "apns_sandbox": ("APNS_SANDBOX", "ecrm-local-apns-sandbox"),
    "fcm": ("GCM", "ecrm-local-fcm"),
}
WHATSAPP_TEMPLATE = {"name": "ecrm_notice", "language": "en_US", "category": "UTILITY", "components": []}
WHATSAPP_NUMBER = "+15550100200"


def application_arn(platform: str) -> str:
    kind, name = PUSH_APPLICATIONS[platform]
    return f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:app/{kind}/{name}"


CONTEXT: dict[str, object] = {
    "ecrm:broadcastVoiceOrigination": VOICE_PLACEHOLDER,
    "ecrm:broadcastWhatsAppPhoneNumberId": WHATSAPP_PLACEHOLDER,
    "ecrm:broadcastPushApplications": {platform: application_arn(platform) for platform in PUSH_APPLICATIONS},
    "ecrm:broadcastWebhookAllowLoopbackHttp": True,
}


def configure(
    runtime: FunctionRuntime,
    client: Callable[[str], Any],
    endpoint_url: str,
    *,
    topics: Mapping[str, str],
) -> dict[str, str]:
    """Create the channels' resources in the emulations and give the functions their ids; answers those ids.

    `topics` maps the logical ids of the stack's SNS topics to their ARNs: the broadcast engine's
    WhatsApp and push events topics receive the emulations' statuses, as the console links them in AWS.
    """
    from infra.local.messaging.client import LocalMessaging

    sns = client("sns")
    push_events = next((arn for logical, arn in topics.items() if "PushEvents" in logical), None)
    for kind, name in PUSH_APPLICATIONS.values():
        attributes = {"PlatformCredential": "local", "PlatformPrincipal": "local"}
        if push_events:
            attributes |= {"EventDeliveryFailure": push_events, "EventEndpointUpdated": push_events}
        sns.create_platform_application(Name=name, Platform=kind, Attributes=attributes)
    number = client("pinpoint-sms-voice-v2").request_phone_number(
        IsoCountryCode="US", MessageType="TRANSACTIONAL", NumberCapabilities=["SMS", "VOICE"], NumberType="LONG_CODE"
    )
    whatsapp_events = next((arn for logical, arn in topics.items() if "WhatsAppEvents" in logical), None)
    waba = LocalMessaging(endpoint_url, account=ACCOUNT_ID, region=REGION).link_whatsapp_account(
        waba_name="eCRM local",
        phone_numbers=[WHATSAPP_NUMBER],
        event_destination_arn=whatsapp_events,
        templates=[WHATSAPP_TEMPLATE],
    )
    ids = {
        VOICE_PLACEHOLDER: str(number["PhoneNumberId"]),
        WHATSAPP_PLACEHOLDER: str(waba["phoneNumbers"][0]["phoneNumberId"]),
    }
    for function in runtime.functions.values():
        for name, value in function.environment.items():
            if value in ids:
                function.environment[name] = ids[value]
    return ids
