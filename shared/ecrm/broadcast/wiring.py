"""What every broadcast function builds from its environment: config, store, services, adapters, queues.

The one place where the broadcast engine is wired to AWS, so each handler stays a few lines. Factories
import what they build: the API function never loads the channel adapters' MIME code, a sender never the
preference centre.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from ecrm.broadcast.contacts import LambdaContacts
from ecrm.broadcast.policy import Cap, PolicySettings
from ecrm.broadcast.store import BroadcastStore
from ecrm.core import aws
from ecrm.core.clock import SystemClock
from ecrm.core.config import PublishingConfig
from ecrm.core.errors import ServiceUnavailable

if TYPE_CHECKING:
    from ecrm.broadcast.channels import ChannelSettings
    from ecrm.broadcast.erasure import BroadcastErasure
    from ecrm.broadcast.feedback import FeedbackService
    from ecrm.broadcast.preferences import PreferenceCentre
    from ecrm.broadcast.proofs import ProofSender
    from ecrm.broadcast.sending import Dispatcher, Sender, SendingSettings
    from ecrm.broadcast.service import MessageService
    from ecrm.broadcast.templates import CachedTemplates


class BroadcastConfig(PublishingConfig):
    broadcast_table_name: str
    customers_contacts_function_name: str = ""
    # Personalization's templates function: a message's content may name a stored template.
    personalization_templates_function_name: str = ""
    # channel -> queue URL of its sender, JSON ({"email": "https://sqs..."})
    broadcast_queue_urls: str = "{}"
    broadcast_email_from: str = "eCRM <news@example.com>"
    broadcast_configuration_set: str = "ecrm"
    broadcast_untracked_configuration_set: str = ""
    broadcast_sms_provider: str = "eum"
    broadcast_sms_configuration_set: str = ""
    # country -> origination identity, JSON; "*" is the default
    broadcast_origination_identities: str = "{}"
    broadcast_voice_origination: str = ""
    broadcast_whatsapp_phone_number_id: str = ""
    # "apns"/"fcm" -> SNS platform application ARN, JSON
    broadcast_push_applications: str = "{}"
    # The public base URL the unsubscribe and preference links are under (the API's stage URL).
    broadcast_links_base_url: str = ""
    broadcast_default_time_zone: str = "UTC"
    # Default caps, JSON: {"overall": [max, "day|week|month"], "email": [max, "day"], ...}
    broadcast_caps: str = "{}"
    broadcast_webhook_allow_loopback_http: bool = False
    # Messages per second per pacing key, JSON: {"email": 14, "sms:<identity>": 1, "sms:*": 1} (channels.pacing)
    broadcast_send_rates: str = "{}"

    def queue_urls(self) -> dict[str, str]:
        return dict(json.loads(self.broadcast_queue_urls or "{}"))

    def policy(self) -> PolicySettings:
        caps = json.loads(self.broadcast_caps or "{}")
        parsed = {name: Cap(int(value[0]), value[1]) for name, value in caps.items()}
        overall = parsed.pop("overall", None)
        return PolicySettings(
            default_time_zone=self.broadcast_default_time_zone, channel_caps=parsed, overall_cap=overall
        )

    def channel_settings(self) -> ChannelSettings:
        from ecrm.broadcast.channels import ChannelSettings

        return ChannelSettings(
            email_from=self.broadcast_email_from,
            configuration_set=self.broadcast_configuration_set or None,
            sms_provider="sns" if self.broadcast_sms_provider == "sns" else "eum",
            origination_identities=json.loads(self.broadcast_origination_identities or "{}"),
            voice_origination=self.broadcast_voice_origination or None,
            whatsapp_phone_number_id=self.broadcast_whatsapp_phone_number_id or None,
            push_applications=json.loads(self.broadcast_push_applications or "{}"),
            untracked_configuration_set=self.broadcast_untracked_configuration_set or None,
            sms_configuration_set=self.broadcast_sms_configuration_set or None,
            webhook_allow_loopback_http=self.broadcast_webhook_allow_loopback_http,
        )


class SqsChannelQueues:
    """`ChannelQueues` on SQS: SendMessageBatch by 10, every entry's failure retried, then raised."""

    def __init__(self, client: Any, urls: Mapping[str, str]) -> None:
        self.client = client
        self.urls = dict(urls)

    def enqueue(self, channel: str, bodies: Sequence[Mapping[str, Any]]) -> None:
        url = self.urls.get(channel)
        if url is None:
            raise ServiceUnavailable(f"no queue for the {channel} channel")
        for start in range(0, len(bodies), 10):
            pending = {str(i): json.dumps(b, separators=(",", ":")) for i, b in enumerate(bodies[start : start + 10])}
            for _ in range(4):
                entries = [{"Id": k, "MessageBody": v} for k, v in pending.items()]
                response = self.client.send_message_batch(QueueUrl=url, Entries=entries)
                pending = {f["Id"]: pending[f["Id"]] for f in response.get("Failed") or []}
                if not pending:
                    break
            if pending:
                raise ServiceUnavailable(f"{len(pending)} messages could not be queued for {channel}")


@cache
def store_for(config: BroadcastConfig) -> BroadcastStore:
    return BroadcastStore(aws.client("dynamodb"), config.broadcast_table_name)


@cache
def contacts_for(config: BroadcastConfig) -> LambdaContacts:
    return LambdaContacts(aws.client("lambda"), config.customers_contacts_function_name)


@cache
def link_secrets(config: BroadcastConfig) -> tuple[bytes, ...]:
    """The link signing keys, newest first (a rotation keeps the previous ones readable)."""
    import secrets

    return store_for(config).link_keys(secrets.token_bytes(32))


def sending_settings(config: BroadcastConfig) -> SendingSettings:
    from ecrm.broadcast.sending import SendingSettings

    secrets = link_secrets(config)
    return SendingSettings(
        policy=config.policy(),
        configuration_set=config.broadcast_configuration_set,
        links_base_url=config.broadcast_links_base_url,
        link_secret=secrets[0] if secrets else b"",
    )


@cache
def message_service_for(config: BroadcastConfig) -> MessageService:
    from ecrm.broadcast.service import MessageService

    def register_device(platform: str, token: str, customer_id: str) -> str:
        from ecrm.broadcast.channels import device_registrar

        registrar: Any = device_registrar(config.channel_settings(), session=aws.client)
        return str(registrar.register(platform, token, customer_id=customer_id))

    return MessageService(
        store_for(config),
        SystemClock(),
        register_device=register_device,
        allow_loopback_http=config.broadcast_webhook_allow_loopback_http,
        templates=templates_for(config),
    )


def templates_for(config: BroadcastConfig) -> CachedTemplates:
    from ecrm.broadcast.templates import CachedTemplates, LambdaTemplates

    return CachedTemplates(
        LambdaTemplates(aws.client("lambda"), config.personalization_templates_function_name), SystemClock()
    )


@cache
def preference_centre_for(config: BroadcastConfig) -> PreferenceCentre:
    from ecrm.broadcast.preferences import PreferenceCentre

    return PreferenceCentre(contacts_for(config), store_for(config), SystemClock(), lambda: link_secrets(config))


@cache
def dispatcher_for(config: BroadcastConfig) -> Dispatcher:
    from ecrm.broadcast.sending import Dispatcher

    queues = SqsChannelQueues(aws.client("sqs"), config.queue_urls())
    channels = frozenset(config.queue_urls())
    return Dispatcher(
        store_for(config), contacts_for(config), queues, SystemClock(), sending_settings(config), channels=channels
    )


@cache
def sender_for(config: BroadcastConfig) -> Sender:
    from ecrm.broadcast.channels import build_adapters
    from ecrm.broadcast.channels.pacing import DynamoPaceCounter, Pacer, SendRates
    from ecrm.broadcast.sending import Sender

    store, clock = store_for(config), SystemClock()
    channels = config.channel_settings()
    adapters = build_adapters(channels, session=aws.client, inbox=store, endpoints=store, clock=clock)
    rates = SendRates.parse(
        config.broadcast_send_rates,
        origination_identities=channels.origination_identities,
        voice_origination=channels.voice_origination,
    )
    pacer = Pacer(rates, DynamoPaceCounter(aws.client("dynamodb"), config.broadcast_table_name), clock)
    return Sender(store, contacts_for(config), adapters, clock, sending_settings(config), pacer=pacer)


@cache
def proof_sender_for(config: BroadcastConfig) -> ProofSender:
    from ecrm.broadcast.channels import build_adapters
    from ecrm.broadcast.proofs import ProofSender

    store, clock = store_for(config), SystemClock()
    adapters = build_adapters(config.channel_settings(), session=aws.client, inbox=store, endpoints=store, clock=clock)
    return ProofSender(store, {c: a for c, a in adapters.items() if c in ("email", "sms")}, clock)


@cache
def feedback_for(config: BroadcastConfig) -> FeedbackService:
    from ecrm.broadcast.feedback import FeedbackService, GuardSettings

    guard = GuardSettings(configuration_set=config.broadcast_configuration_set, pause_for=timedelta(hours=1))
    return FeedbackService(store_for(config), contacts_for(config), SystemClock(), guard, metric=emit_metric)


def emit_metric(name: str, value: float, dimensions: Mapping[str, str]) -> None:
    """One CloudWatch metric in embedded metric format, with its own dimensions (the configuration set)."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    from ecrm.core.observability import METRICS_NAMESPACE

    unit = MetricUnit.Count if name in COUNTED_METRICS else MetricUnit.NoUnit
    with single_metric(name=name, unit=unit, value=value, namespace=METRICS_NAMESPACE) as metric:
        for key, dimension in dimensions.items():
            metric.add_dimension(key, dimension)


COUNTED_METRICS = frozenset({"WindowSends", "MarketingEmailPaused"})


def erasure_for(config: BroadcastConfig) -> BroadcastErasure:
    from ecrm.broadcast.erasure import BroadcastErasure

    return BroadcastErasure(store_for(config), SystemClock())
