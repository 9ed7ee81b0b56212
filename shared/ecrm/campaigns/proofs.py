"""A campaign's test sends (proofs): each variant's content, rendered with sample data, to each staff address
given, through broadcast's bulk function as transactional test messages (never to a customer, never counted).

A proof's key is made of the campaign, its version, the request's Idempotency-Key, the variant, the channel and
the address: a retried request sends nothing twice; a changed campaign or a new key sends again.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ecrm.broadcast.models import TestMessage
from ecrm.campaigns.models import Campaign, TestSendItem

SAMPLE_PROFILE = {"first_name": "Sample", "last_name": "Recipient", "country": "FR", "city": "Paris"}
TEST_MARK = "[Test] "


def channel_of(address: str) -> str:
    return "sms" if address.startswith("+") else "email"


def proof_key(campaign: Campaign, idempotency_key: str | None, variant: str, address: str) -> str:
    named = f"{campaign.version}|{idempotency_key or ''}|{variant}|{channel_of(address)}|{address.lower()}"
    return f"{campaign.campaign_id}.{hashlib.sha256(named.encode()).hexdigest()[:32]}"


def proofs_of(
    campaign: Campaign, addresses: list[str], idempotency_key: str | None
) -> tuple[list[TestMessage], list[TestSendItem]]:
    """The test messages to send, and the items with nothing to send (a variant without that channel's parts)."""
    messages: list[TestMessage] = []
    skipped: list[TestSendItem] = []
    for variant in campaign.variants:
        for address in addresses:
            channel = channel_of(address)
            parts = variant.content.get(channel)  # type: ignore[call-overload]
            if not parts or "template_id" in parts:
                reason = "a stored template is not test-sent yet" if parts else f"the variant has no {channel} content"
                skipped.append(
                    TestSendItem(
                        variant=variant.key, channel=channel, address=address, status="no_content", reason=reason
                    )
                )
                continue
            messages.append(
                TestMessage(
                    key=proof_key(campaign, idempotency_key, variant.key, address),
                    channel=channel,
                    address=address,
                    content=_marked(channel, dict(parts)),
                    profile=SAMPLE_PROFILE,
                    data={"campaign_id": campaign.campaign_id, "variant": variant.key},
                )
            )
    return messages, skipped


def _marked(channel: str, parts: dict[str, Any]) -> dict[str, Any]:
    """A test says it is one where the recipient sees it first: the subject, or the SMS body."""
    name = "subject" if channel == "email" else "body"
    if isinstance(parts.get(name), str):
        parts[name] = TEST_MARK + parts[name]
    return parts
