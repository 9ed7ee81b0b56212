"""Identity resolution and merges against DynamoDB (moto): one profile per real person."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest
from ecrm.core.clock import FixedClock
from ecrm.customers.models import CustomerUpsert
from ecrm.customers.service import CustomerService
from ecrm.customers.store import CustomerStore

from tests.integration.customers.conftest import RecordingPublisher


def record(source: str, *identities: tuple[str, str] | tuple[str, str, str], **attributes: object) -> CustomerUpsert:
    return CustomerUpsert.model_validate(
        {
            "source": source,
            "identities": [
                {"type": i[0], "value": i[1], **({"namespace": i[2]} if len(i) > 2 else {})} for i in identities
            ],
            "attributes": attributes,
        }
    )


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("email", "Ada.Lovelace@Example.com"), ("email", "  ada.lovelace@example.COM ")),
        (("email", "ada.lovelace+news@googlemail.com"), ("email", "adalovelace@gmail.com")),
        (("phone", "+49 30 1234567"), ("phone", "030 1234567")),
        (("external_id", "E-1", "erp"), ("external_id", "E-1", "erp")),
        (("loyalty_card", "lc-0042"), ("loyalty_card", "LC-0042")),
    ],
)
def test_each_identity_type_resolves_after_normalisation(service: CustomerService, first, second) -> None:
    # Given a customer created from one source
    created = service.upsert(record("web", first))
    # When another source sends the same identity in another form
    matched = service.upsert(record("shop", second))
    # Then it is the same customer, matched by that identity
    assert created.created
    assert not matched.created
    assert matched.customer_id == created.customer_id
    assert matched.matched_by


def test_dots_are_kept_for_non_gmail_addresses(service: CustomerService) -> None:
    a = service.upsert(record("web", ("email", "ada.lovelace@example.com")))
    b = service.upsert(record("web", ("email", "adalovelace@example.com")))
    assert a.customer_id != b.customer_id


def test_the_same_external_id_in_two_systems_is_two_identities(service: CustomerService) -> None:
    a = service.upsert(record("erp", ("external_id", "42", "erp")))
    b = service.upsert(record("shop", ("external_id", "42", "shop")))
    assert a.customer_id != b.customer_id


def test_a_three_way_merge_keeps_everything_under_the_oldest_customer(
    service: CustomerService, publisher: RecordingPublisher, clock: FixedClock
) -> None:
    # Given three customers known by different identities
    a = service.upsert(record("web", ("email", "ada@example.com"), first_name="Ada"))
    clock.advance(seconds=1)
    b = service.upsert(record("callcenter", ("phone", "+4930111111"), city="Berlin"))
    clock.advance(seconds=1)
    c = service.upsert(record("erp", ("external_id", "E-7", "erp"), last_name="Lovelace"))
    # When one record links all three
    clock.advance(seconds=1)
    linked = service.upsert(
        record("shop", ("email", "ada@example.com"), ("phone", "030 111111"), ("external_id", "E-7", "erp"))
    )
    # Then they merge into the oldest, nothing is lost, and old ids still resolve
    assert linked.customer_id == a.customer_id
    assert sorted(linked.merged_ids) == sorted([b.customer_id, c.customer_id])
    survivor = service.get(b.customer_id)
    assert survivor.customer_id == a.customer_id
    assert {k: v.value for k, v in survivor.profile.items()} == {
        "first_name": "Ada",
        "city": "Berlin",
        "last_name": "Lovelace",
    }
    assert {i.type for i in survivor.identities} == {"email", "phone", "external_id"}
    assert sorted(survivor.merged_ids) == sorted([b.customer_id, c.customer_id])
    assert len(publisher.of("CustomersMerged")) == 2
    merges = service.store.merges(a.customer_id)
    assert {m.merged_id for m in merges} == {b.customer_id, c.customer_id}
    assert all(m.reason and m.merged_by for m in merges)


def test_source_priority_decides_then_recency(service: CustomerService, clock: FixedClock) -> None:
    customer = service.upsert(record("erp", ("email", "p@example.com"), city="Hamburg")).customer_id
    clock.advance(days=1)
    service.upsert(record("web", ("email", "p@example.com"), city="Bremen"))  # lower priority: ignored
    assert service.get(customer).profile["city"].value == "Hamburg"
    clock.advance(days=1)
    service.upsert(record("erp", ("email", "p@example.com"), city="Kiel"))  # same source, newer: wins
    assert service.get(customer).profile["city"].value == "Kiel"


def test_the_same_record_twice_changes_nothing(service: CustomerService, publisher: RecordingPublisher) -> None:
    first = service.upsert(record("web", ("email", "same@example.com"), first_name="Sam"))
    events = len(publisher.events)
    again = service.upsert(record("web", ("email", "same@example.com"), first_name="Sam"))
    assert again.customer_id == first.customer_id
    assert again.changed == []
    assert len(publisher.events) == events


class RacingStore(CustomerStore):
    """Lets a competing upsert run between this upsert's read of the identity owners and its write.

    (moto's in-process backends are not thread-safe, so the race is made deterministic instead of
    hoping ten threads interleave the same way twice.)
    """

    def __init__(self, inner: CustomerStore, competitor: Callable[[], None]) -> None:
        super().__init__(inner.client, inner.table)
        self.competitor: Callable[[], None] | None = competitor

    def owners_of(self, keys: Iterable[str]) -> dict[str, str]:
        owners = super().owners_of(keys)
        if self.competitor is not None:
            competitor, self.competitor = self.competitor, None
            competitor()  # commits first, after we have read "nobody owns it"
        return owners


def test_concurrent_upserts_of_one_new_identity_create_one_customer(
    service: CustomerService, publisher: RecordingPublisher
) -> None:
    # Given a competitor that creates the customer right after our read saw no owner
    competitor_result: list[str] = []
    competitor = CustomerService(service.store, publisher, service.clock, service.policy)
    racing = CustomerService(
        RacingStore(
            service.store,
            lambda: competitor_result.append(
                competitor.upsert(record("web", ("email", "race@example.com"), ("device_id", "d1"))).customer_id
            ),
        ),
        publisher,
        service.clock,
        service.policy,
    )
    # When our upsert of the same new identity commits second
    ours = racing.upsert(record("shop", ("email", "RACE@example.com"), ("device_id", "d2")))
    # Then the conditional claim failed, we resolved again, and there is exactly one customer
    assert not ours.created
    assert ours.customer_id == competitor_result[0]
    assert len(publisher.of("CustomerCreated")) == 1
    assert {i.value for i in service.get(ours.customer_id).identities if i.type == "device_id"} == {"d1", "d2"}


def test_concurrent_merges_of_the_same_customers_converge(
    service: CustomerService, publisher: RecordingPublisher
) -> None:
    a = service.upsert(record("web", ("email", "m1@example.com"))).customer_id
    b = service.upsert(record("web", ("email", "m2@example.com"))).customer_id
    linking = record("shop", ("email", "m1@example.com"), ("email", "m2@example.com"))
    competitor = CustomerService(service.store, publisher, service.clock, service.policy)
    racing = CustomerService(
        RacingStore(service.store, lambda: competitor.upsert(linking)), publisher, service.clock, service.policy
    )
    result = racing.upsert(linking)
    assert result.customer_id == a
    assert service.get(b).customer_id == a
    assert len(publisher.of("CustomersMerged")) == 1


def test_consents_merge_to_the_most_restrictive(service: CustomerService) -> None:
    proof = {"source": "web", "captured_at": "2026-11-01T00:00:00Z"}
    a = service.upsert(
        CustomerUpsert.model_validate(
            {
                "source": "web",
                "identities": [{"type": "email", "value": "c@example.com"}],
                "consents": [
                    {"channel": "email", "purpose": "marketing", "state": "granted", "proof": proof},
                    {"channel": "sms", "purpose": "marketing", "state": "granted", "proof": proof},
                ],
            }
        )
    )
    b = service.upsert(
        CustomerUpsert.model_validate(
            {
                "source": "callcenter",
                "identities": [{"type": "phone", "value": "+4930222222"}],
                "consents": [
                    {
                        "channel": "email",
                        "purpose": "marketing",
                        "state": "denied",
                        "proof": {**proof, "source": "callcenter", "captured_at": "2026-10-01T00:00:00Z"},
                    }
                ],
            }
        )
    )
    merged = service.upsert(record("shop", ("email", "c@example.com"), ("phone", "+4930222222")))
    assert merged.merged_ids == [b.customer_id]
    assert merged.customer_id == a.customer_id
    consents = {(c.channel, c.purpose): c.state for c in service.get(a.customer_id).consents}
    assert consents == {("email", "marketing"): "denied", ("sms", "marketing"): "granted"}


def test_a_stale_consent_never_overrides_a_newer_withdrawal(service: CustomerService) -> None:
    def with_consent(state: str, when: str) -> CustomerUpsert:
        return CustomerUpsert.model_validate(
            {
                "source": "web",
                "identities": [{"type": "email", "value": "w@example.com"}],
                "consents": [
                    {
                        "channel": "email",
                        "purpose": "marketing",
                        "state": state,
                        "proof": {"source": "web", "captured_at": when},
                    }
                ],
            }
        )

    customer = service.upsert(with_consent("denied", "2026-11-20T00:00:00Z")).customer_id
    service.upsert(with_consent("granted", "2026-01-01T00:00:00Z"))
    assert service.get(customer).consents[0].state == "denied"


def test_a_device_id_alone_attaches_but_never_merges(service: CustomerService) -> None:
    a = service.upsert(record("web", ("email", "d1@example.com"), ("device_id", "tablet-1")))
    b = service.upsert(record("web", ("email", "d2@example.com"), ("device_id", "tablet-1")))
    assert a.customer_id != b.customer_id
    assert not b.merged_ids
    anonymous = service.upsert(record("web", ("device_id", "tablet-1")))
    assert anonymous.customer_id == b.customer_id  # the customer last seen on the device
