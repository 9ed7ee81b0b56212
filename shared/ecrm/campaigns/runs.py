"""The steps of a campaign run (one Step Functions execution): freeze, send each chunk, finish.

- `freeze` resolves the audience once and writes it to S3 as a JSON array of chunks, one item per chunk:
  the run's Distributed Map reads it with an S3 ItemReader (Step Functions' ItemBatcher would batch for us,
  but the local cloud's moto does not parse it, so the chunks are made here).
- `send_chunk` assigns each recipient its arm (a hash: the same arm on every attempt), hands the treated
  ones to broadcast keyed `(campaign:<id>, customer, r<run>.<arm>)`, and records the chunk with its counts
  in one conditional transaction. A chunk already recorded is skipped; one handed over but not recorded
  (a crash in between) is handed over again and broadcast's key answers with the same messages: a
  resumed or re-run run sends nobody twice. A paused or cancelled campaign's chunks are left for later.
- `finish` completes the run when every chunk is recorded (a recurring campaign goes back to scheduled).
"""

from __future__ import annotations

from typing import Any

from ecrm.broadcast.models import MessageRequest
from ecrm.campaigns.assignment import arms_of, assign
from ecrm.campaigns.models import HOLDOUT, Campaign, CampaignCompleted, CampaignStatusChanged, Content
from ecrm.campaigns.ports import MAX_REQUESTS_PER_CALL, AudienceSource, BroadcastGateway, ManifestStore
from ecrm.campaigns.store import CampaignStore, StaleRecord
from ecrm.core.clock import Clock
from ecrm.core.errors import NotFound

CHUNK_SIZE = 500
MANIFEST_PREFIX = "campaign-runs/"


def message_step(run: int, arm: str) -> str:
    """Broadcast's step of a campaign message: a recurring campaign's next run is a new message."""
    return f"r{run}.{arm}"


class CampaignRunSteps:
    def __init__(
        self,
        store: CampaignStore,
        clock: Clock,
        *,
        audiences: AudienceSource,
        manifests: ManifestStore,
        broadcast: BroadcastGateway,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self.store = store
        self.clock = clock
        self.audiences = audiences
        self.manifests = manifests
        self.broadcast = broadcast
        self.chunk_size = chunk_size

    def freeze(self, campaign_id: str, run: int) -> dict[str, Any]:
        campaign = self._campaign(campaign_id)
        audience = self.audiences.customers(campaign.audience)
        chunks = [
            {
                "campaign_id": campaign_id,
                "run": run,
                "chunk": n,
                "customer_ids": audience[start : start + self.chunk_size],
            }
            for n, start in enumerate(range(0, len(audience), self.chunk_size))
        ]
        location = self.manifests.write(f"{MANIFEST_PREFIX}{campaign_id}/run-{run:06d}.json", chunks)
        return {**location, "chunks": len(chunks), "audience": len(audience)}

    def send_chunk(self, campaign_id: str, run: int, chunk: int, customer_ids: list[str]) -> dict[str, Any]:
        campaign = self._campaign(campaign_id)
        if campaign.status != "running" or campaign.run != run:
            return {"chunk": chunk, "outcome": f"skipped:{campaign.status}"}
        if self.store.chunk_done(campaign_id, run, chunk):
            return {"chunk": chunk, "outcome": "already_done"}
        arms = arms_of(campaign)
        variants = {v.key: v for v in campaign.variants}
        counts: dict[str, dict[str, int]] = {}
        requests: list[MessageRequest] = []
        for customer_id in customer_ids:
            arm = assign(campaign_id, customer_id, arms)
            tally = counts.setdefault(arm, {"targeted": 0, "requested": 0})
            tally["targeted"] += 1
            if arm == HOLDOUT:
                continue
            tally["requested"] += 1
            requests.append(self._request(campaign, run, customer_id, variants[arm].content, arm))
        for start in range(0, len(requests), MAX_REQUESTS_PER_CALL):
            self.broadcast.request(requests[start : start + MAX_REQUESTS_PER_CALL])
        recorded = self.store.record_chunk(campaign_id, run, chunk, counts, self.clock.now())
        return {"chunk": chunk, "outcome": "sent" if recorded else "already_done", "requested": len(requests)}

    def finish(self, campaign_id: str, run: int, chunks: int, correlation_id: str | None = None) -> dict[str, Any]:
        campaign = self._campaign(campaign_id)
        if campaign.status != "running" or campaign.run != run:
            return {"status": campaign.status}
        if not all(self.store.chunk_done(campaign_id, run, n) for n in range(chunks)):
            return {"status": "running", "incomplete": True}
        now = self.clock.now()
        status = "scheduled" if campaign.schedule.kind == "cron" else "completed"
        targeted = {arm: c.get("targeted", 0) for arm, c in self.store.arm_counts(campaign_id).items()}
        done = campaign.model_copy(
            update={"status": status, "updated_at": now, "completed_at": now, "version": campaign.version + 1}
        )
        events = [
            CampaignStatusChanged(campaign_id=campaign_id, status=status, previous="running", occurred_at=now),
            CampaignCompleted(campaign_id=campaign_id, run=run, targeted=targeted, completed_at=now),
        ]
        try:
            self.store.save_campaign(
                done, expected_version=campaign.version, events=list(events), correlation_id=correlation_id, now=now
            )
        except StaleRecord:
            return {"status": self._campaign(campaign_id).status}
        return {"status": status}

    def _request(self, campaign: Campaign, run: int, customer_id: str, content: Content, arm: str) -> MessageRequest:
        channel = campaign.channel_strategy.channel
        return MessageRequest.model_validate(
            {
                "customer_id": customer_id,
                "purpose": campaign.purpose,
                "topic": campaign.topic,
                "channel": channel,
                "content": {channel: content[channel]} if channel else content,
                "source": f"campaign:{campaign.campaign_id}",
                "step": message_step(run, arm),
                "tracking": campaign.tracking,
                "data": {"campaign_id": campaign.campaign_id, "variant": arm},
            }
        )

    def _campaign(self, campaign_id: str) -> Campaign:
        campaign = self.store.campaign(campaign_id)
        if campaign is None:
            raise NotFound(f"no campaign {campaign_id}")
        return campaign
