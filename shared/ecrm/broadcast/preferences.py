"""The signed links in marketing messages: RFC 8058 one-click unsubscribe and the preference centre.

Both are public pages reached with a signed token (`ecrm.broadcast.tokens`) naming the customer, the
channel, the purpose and the topic of the message that carried it: no sign-in, and nothing else can be
read or changed with it. Consents are written at their owner, the customer store (`record_consents`,
with the proof of where the statement came from); a withdrawal is then announced as `CustomerUnsubscribed`.
A one-click unsubscribe is idempotent: a consent already withdrawn is not written again.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ecrm.broadcast.contacts import Contacts
from ecrm.broadcast.feedback import withdraw_marketing
from ecrm.broadcast.models import CustomerUnsubscribed
from ecrm.broadcast.store import BroadcastStore
from ecrm.broadcast.tokens import InvalidLinkToken, LinkToken, read_link
from ecrm.core.clock import Clock
from ecrm.core.errors import InvalidInput, NotFound
from ecrm.core.vocabulary import CONSENT_CHANNEL_OF

# The consent channels a preference centre shows, and the card address kind that makes each reachable.
SHOWN_CHANNELS: dict[str, str | None] = {
    "email": "email",
    "sms": "phone",
    "phone": "phone",
    "whatsapp": "phone",
    "push": None,
    "in_app": None,
}
LABELS = {
    "email": "Email",
    "sms": "Text messages",
    "phone": "Phone calls",
    "whatsapp": "WhatsApp",
    "push": "Mobile notifications",
    "in_app": "In-app messages",
}


class PreferenceCentre:
    def __init__(
        self,
        contacts: Contacts,
        store: BroadcastStore,
        clock: Clock,
        secrets: Sequence[bytes] | Callable[[], Sequence[bytes]],
    ) -> None:
        self.contacts = contacts
        self.store = store
        self.clock = clock
        self._secrets = secrets

    @property
    def secrets(self) -> list[bytes]:
        """Read on the first link opened (a cold start that serves other routes reads no key)."""
        return list(self._secrets() if callable(self._secrets) else self._secrets)

    def read(self, token_text: str | None) -> LinkToken:
        if not token_text or not self.secrets:
            raise InvalidInput("a signed token is required", field="token")
        try:
            return read_link(self.secrets, token_text, now=self.clock.now())
        except InvalidLinkToken as exc:
            raise InvalidInput("the link is not valid or has expired", field="token") from exc

    def unsubscribe(
        self,
        token_text: str | None,
        *,
        correlation_id: str | None,
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> LinkToken:
        """Withdraw what the link names (the topic, else marketing on its channel); a second click changes nothing."""
        token = self.read(token_text)
        card = self._card(token.customer_id)
        purpose = f"topic:{token.topic}" if token.topic else "marketing"
        channel = CONSENT_CHANNEL_OF.get(token.channel, token.channel)
        if _state(card, channel, purpose) == "denied":
            return token
        now = self.clock.now()
        proof = {k: v for k, v in {"ip": ip, "user_agent": user_agent}.items() if v}
        withdraw_marketing(
            self.contacts,
            self.store,
            customer_id=token.customer_id,
            channel=token.channel,
            topic=token.topic,
            method="one_click",
            address=None,
            at=now,
            now=now,
            correlation_id=correlation_id,
            proof=proof,
        )
        return token

    def page(self, token_text: str | None, *, saved: bool = False) -> str:
        token = self.read(token_text)
        card = self._card(token.customer_id)
        return _page(token_text or "", _rows(card, token), saved=saved)

    def update(
        self,
        token_text: str | None,
        form: Mapping[str, Sequence[str]],
        *,
        correlation_id: str | None,
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> str:
        """Every shown box becomes granted when ticked, denied when not; only the changes are written."""
        token = self.read(token_text)
        card = self._card(token.customer_id)
        ticked = set(form.get("consent", ()))
        changes = []
        for channel, purpose, state in _rows(card, token):
            wanted = "granted" if f"{channel}|{purpose}" in ticked else "denied"
            if wanted != state:
                changes.append({"channel": channel, "purpose": purpose, "state": wanted})
        if changes:
            now = self.clock.now()
            proof = {
                "source": "broadcast",
                "captured_at": now.isoformat(),
                "text": "preference centre",
                **{k: v for k, v in {"ip": ip, "user_agent": user_agent}.items() if v},
            }
            self.contacts.record_consents(token.customer_id, changes, proof=proof, recorded_by="preference_centre")
            withdrawn = [
                CustomerUnsubscribed(
                    customer_id=token.customer_id,
                    channel=c["channel"],
                    topic=c["purpose"].removeprefix("topic:") if c["purpose"].startswith("topic:") else None,
                    purpose=c["purpose"],
                    method="preference_centre",
                    address_hash=None,
                    occurred_at=now,
                )
                for c in changes
                if c["state"] == "denied"
            ]
            if withdrawn:
                self.store.publish_for_customer(token.customer_id, withdrawn, correlation_id=correlation_id, now=now)
        return self.page(token_text, saved=True)

    def _card(self, customer_id: str) -> Mapping[str, Any]:
        card = self.contacts.cards([customer_id]).get(customer_id)
        if card is None:
            raise NotFound("this customer is no longer known")
        return card


def _state(card: Mapping[str, Any], channel: str, purpose: str) -> str | None:
    for consent in card.get("consents") or ():
        if consent.get("channel") == channel and consent.get("purpose") == purpose:
            return str(consent.get("state"))
    return None


def _rows(card: Mapping[str, Any], token: LinkToken) -> list[tuple[str, str, str | None]]:
    """(channel, purpose, current state) for each box: reachable channels by marketing and every known topic."""
    addresses = card.get("addresses") or {}
    consents = card.get("consents") or ()
    held = {c.get("channel") for c in consents}
    channels = [c for c, kind in SHOWN_CHANNELS.items() if (kind and addresses.get(kind)) or c in held]
    token_channel = CONSENT_CHANNEL_OF.get(token.channel, token.channel)
    if token_channel not in channels:
        channels.insert(0, token_channel)
    topics = sorted(
        {str(c["purpose"]) for c in consents if str(c.get("purpose", "")).startswith("topic:")}
        | ({f"topic:{token.topic}"} if token.topic else set())
    )
    return [(ch, p, _state(card, ch, p)) for ch in channels for p in ("marketing", *topics)]


def _page(token_text: str, rows: list[tuple[str, str, str | None]], *, saved: bool) -> str:
    token = html.escape(token_text, quote=True)
    lines = []
    for channel, purpose, state in rows:
        label = LABELS.get(channel, channel)
        what = "news and offers" if purpose == "marketing" else purpose.removeprefix("topic:").replace("_", " ")
        checked = " checked" if state == "granted" else ""
        value = html.escape(f"{channel}|{purpose}", quote=True)
        lines.append(
            f'<li><label><input type="checkbox" name="consent" value="{value}"{checked}> '
            f"{html.escape(label)}: {html.escape(what)}</label></li>"
        )
    notice = '<p role="status">Your choices are saved.</p>' if saved else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Your preferences</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"></head><body>'
        f"<h1>What we may send you</h1>{notice}"
        f'<form method="post" action="preferences?token={token}"><ul>{"".join(lines)}</ul>'
        '<button type="submit">Save</button></form></body></html>'
    )


def unsubscribed_page(token: LinkToken) -> str:
    what = f"the {token.topic.replace('_', ' ')} messages" if token.topic else "news and offers"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Unsubscribed</title></head><body>'
        f"<h1>You are unsubscribed</h1><p>You will no longer receive {html.escape(what)} by "
        f"{html.escape(LABELS.get(CONSENT_CHANNEL_OF.get(token.channel, token.channel), token.channel).lower())}."
        "</p></body></html>"
    )


def confirm_page(token_text: str, token: LinkToken) -> str:
    """`GET /unsubscribe`: a button, not the unsubscribe itself (mail scanners follow links; RFC 8058 POSTs)."""
    what = f"the {token.topic.replace('_', ' ')} messages" if token.topic else "news and offers"
    action = html.escape(f"unsubscribe?token={token_text}", quote=True)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Unsubscribe</title></head><body>'
        f"<h1>Unsubscribe from {html.escape(what)}?</h1>"
        f'<form method="post" action="{action}"><button type="submit">Unsubscribe</button></form>'
        f'<p><a href="{html.escape(f"preferences?token={token_text}", quote=True)}">Choose what you receive</a></p>'
        "</body></html>"
    )
