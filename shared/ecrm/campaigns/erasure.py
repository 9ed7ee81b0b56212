"""This engine's part of an erasure request (GDPR Art. 17), then its acknowledgement.

Deleted: the customer's passes through every journey (an active pass leaves the journey's `active` count as an
exit `erased`, without an event) and their count of journeys under way; in every campaign, their arm
(`RCPT#`) and conversion marker (`CONVERTED#`); their id in every uploaded list, in the campaign's item or in
the list's object (the audience's `erased` says how many ids went); their id in the manifests of the runs
still under way (a finished run deletes its own manifests, `CampaignRunSteps.finish`).

Kept, naming nobody: the arms' and journeys' counters, the markers of counted message events (a message id is
a hash of source, customer and step) and of attributed orders.

Not reached from here: a run's Step Functions execution history, which holds its chunks' items (customer ids)
for the service's retention (90 days after the execution closed); and a resumed run that read its manifest
before the erasure rewrote it and writes it back (a narrow race): a message requested for the erased customer
afterwards finds no profile in broadcast and is suppressed.

Everything is idempotent: a redelivered request finds nothing left and acknowledges again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

from ecrm.campaigns.models import Campaign, CampaignsDataErased, Journey, StoredList
from ecrm.campaigns.ports import AudienceLists, ManifestStore
from ecrm.campaigns.runs import MANIFEST_PREFIX
from ecrm.campaigns.state_store import JourneyStateStore, StaleState
from ecrm.campaigns.store import CampaignStore, StaleRecord
from ecrm.core.clock import Clock
from ecrm.core.erasure import CustomerErasureRequested
from ecrm.core.errors import ServiceUnavailable

ENGINE = "campaigns"
ATTEMPTS = 5
PAGE = 100
T = TypeVar("T")


class CampaignErasure:
    def __init__(
        self,
        store: CampaignStore,
        states: JourneyStateStore,
        clock: Clock,
        *,
        lists: AudienceLists | None,
        manifests: ManifestStore | None,
    ) -> None:
        self.store = store
        self.states = states
        self.clock = clock
        self.lists = lists
        self.manifests = manifests

    def erase(self, request: CustomerErasureRequested) -> CampaignsDataErased:
        erased = list(dict.fromkeys([request.customer_id, *request.customer_ids]))
        for journey in _every(self.store.journeys):
            for customer_id in erased:
                self._leave(journey, customer_id)
        for customer_id in erased:
            self.states.forget_customer(customer_id)
        for campaign in _every(self.store.campaigns):
            self.store.forget_recipients(campaign.campaign_id, erased)
            self._drop_from_list(campaign.campaign_id, set(erased))
        self._drop_from_manifests(set(erased))
        return CampaignsDataErased(request_id=request.request_id, engine=ENGINE, erased_at=self.clock.now())

    def _leave(self, journey: Journey, customer_id: str) -> None:
        for _ in range(ATTEMPTS):
            try:
                for state, version in self.states.passes(journey.journey_id, customer_id):
                    self.states.erase(state, version)
                return
            except StaleState:
                continue  # the pass moved on meanwhile: read it again
        raise ServiceUnavailable(f"the passes of an erased customer in {journey.journey_id} kept moving: retried")

    def _drop_from_list(self, campaign_id: str, erased: set[str]) -> None:
        """The list's object first, then the campaign's item (a crash in between: the redelivery finds the
        object clean and the item still to change, or nothing)."""
        for _ in range(ATTEMPTS):
            campaign = self.store.campaign(campaign_id)
            if campaign is None:
                return
            audience = campaign.audience
            inline = [c for c in audience.customer_ids if c not in erased]
            removed = len(audience.customer_ids) - len(inline)
            stored = audience.stored_list
            if stored is not None and self.lists is not None:
                members = self.lists.get(stored)
                kept = [c for c in members if c not in erased]
                if len(kept) != len(members):
                    stored = self.lists.put(campaign_id, kept)
                    removed += len(members) - len(kept)
            if not removed and stored == audience.stored_list:
                return
            if self._save_audience(campaign, inline, stored, removed):
                return
        raise ServiceUnavailable(f"campaign {campaign_id} kept changing while an erasure edited its list: retried")

    def _save_audience(self, campaign: Campaign, inline: list[str], stored: StoredList | None, removed: int) -> bool:
        now = self.clock.now()
        audience = campaign.audience.model_copy(
            update={"customer_ids": inline, "stored_list": stored, "erased": campaign.audience.erased + removed}
        )
        changed = campaign.model_copy(update={"audience": audience, "version": campaign.version + 1, "updated_at": now})
        try:
            self.store.save_campaign(
                changed, expected_version=campaign.version, events=[], correlation_id=None, now=now
            )
        except StaleRecord:
            return False
        return True

    def _drop_from_manifests(self, erased: set[str]) -> None:
        if self.manifests is None:
            return
        for key in self.manifests.keys(MANIFEST_PREFIX):
            items = self.manifests.read(key)
            if not items:
                continue
            changed = False
            for item in items:
                kept = [c for c in item.get("customer_ids", []) if c not in erased]
                if len(kept) != len(item.get("customer_ids", [])):
                    item["customer_ids"] = kept
                    changed = True
            if changed:
                self.manifests.write(key, items)


def _every(page: Callable[[int, str | None], tuple[list[T], str | None]]) -> Iterator[T]:
    after: str | None = None
    while True:
        found, after = page(PAGE, after)
        yield from found
        if after is None:
            return
