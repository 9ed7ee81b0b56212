"""The contact cards the broadcast engine asks for at send time, and the consents it records for the customer.

The customer store owns consent (ARCHITECTURE: a send asks the owner, not a copy), so the broadcast
engine invokes the contacts function with `ContactsRequest` payloads: `cards` answers what is held
right now, `record_consents` writes what the customer said through a broadcast surface (one-click
unsubscribe, preference centre, SMS STOP, a complaint) through the service, so the proof is logged
and `ConsentChanged` leaves through the outbox in the same transaction as the change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import ValidationError

from ecrm.core.errors import InvalidInput
from ecrm.customers.models import (
    ConsentIn,
    ContactCard,
    ContactCards,
    ContactCardsRequest,
    ContactConsent,
    ContactsRequest,
    Customer,
    RecordConsentsRequest,
    RecordedConsents,
)
from ecrm.customers.service import CustomerService

# Which identities a card's addresses come from: sms, voice and whatsapp all reach a customer on "phone".
ADDRESS_TYPES = ("email", "phone")


def contact_card(customer: Customer) -> ContactCard:
    """A customer as a send decision sees it: addresses, consent states, preferences, plain attribute values."""
    addresses: dict[str, list[str]] = {}
    for identity in customer.identities:
        if identity.type in ADDRESS_TYPES:
            addresses.setdefault(identity.type, []).append(identity.value)
    return ContactCard(
        customer_id=customer.customer_id,
        status=customer.status,
        addresses={kind: sorted(values) for kind, values in sorted(addresses.items())},
        consents=[
            ContactConsent(channel=c.channel, purpose=c.purpose, state=c.state, updated_at=c.updated_at)
            for c in customer.consents
        ],
        preferences=customer.preferences,
        profile={name: held.value for name, held in sorted(customer.profile.items())},
        traits=dict(customer.traits),
    )


def read_request(payload: object) -> ContactCardsRequest | RecordConsentsRequest:
    """The payload as a request, or `InvalidInput` naming every field that is wrong."""
    try:
        return ContactsRequest.model_validate({"request": payload}).request
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'payload'}: {e['msg']}" for e in error.errors()[:5]
        )
        raise InvalidInput(f"not a contacts request ({problems})") from None


@dataclass
class ContactDirectory:
    service: CustomerService

    def answer(self, payload: object, *, correlation_id: str | None = None) -> ContactCards | RecordedConsents:
        request = read_request(payload)
        if isinstance(request, ContactCardsRequest):
            return self.cards(request.customer_ids)
        return self.record_consents(request, correlation_id=correlation_id)

    def cards(self, customer_ids: Iterable[str]) -> ContactCards:
        """A merged id answers with its survivor's card (the survivor's id inside); erased or unknown are missing."""
        answer = ContactCards()
        asked = list(dict.fromkeys(customer_ids))
        loaded = self.service.store.load_many(asked)
        for customer_id in asked:
            customer = loaded[customer_id]
            if customer is None or customer.status != "active":
                answer.missing.append(customer_id)
            else:
                answer.cards[customer_id] = contact_card(customer)
        return answer

    def record_consents(self, request: RecordConsentsRequest, *, correlation_id: str | None = None) -> RecordedConsents:
        statements = [
            ConsentIn(channel=c.channel, purpose=c.purpose, state=c.state, proof=request.proof)
            for c in request.consents
        ]
        customer = self.service.set_consents(
            request.customer_id,
            statements,
            recorded_by=f"broadcast:{request.recorded_by}",
            correlation_id=correlation_id,
        )
        return RecordedConsents(card=contact_card(customer))
