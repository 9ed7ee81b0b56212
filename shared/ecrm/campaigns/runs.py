"""The steps of a campaign run (one Step Functions execution): freeze, send each chunk, pick a winner, finish.

- `freeze` resolves the audience once and writes it to S3 as a JSON array of chunks, one item per chunk:
  the run's Distributed Map reads it with an S3 ItemReader (Step Functions' ItemBatcher would batch for us,
  but the local cloud's moto does not parse it, so the chunks are made here). Each item says when it may
  be handed over (`not_before`, `plan`): at once, at each zone's local time, or paced by the throttle.
  An auto-winner's run has two manifests: the test phase (the variants to `test_share` percent of the
  treated recipients, and the holdout) and the rest, which the run sends after the test hours.
- `send_chunk` assigns each recipient its arm (a hash: the same arm on every attempt), hands the treated
  ones to broadcast keyed `(campaign:<id>, customer, r<run>.<arm>)`, and records the chunk with its counts
  in one conditional transaction. A chunk already recorded is skipped; one handed over but not recorded
  (a crash in between) is handed over again and broadcast's key answers with the same messages: a
  resumed or re-run run sends nobody twice. A paused or cancelled campaign's chunks are left for later.
  A chunk of the rest phase sends every recipient the winner, counted on the winner's arm.
- `pick_winner` reads the arms' counters after the test hours and records the variant with the best rate
  of the campaign's metric (the first variant when nothing was measured), once.
- `finish` completes the run when every chunk is recorded (a recurring campaign goes back to scheduled), and
  deletes the run's manifests once the run is over.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from ecrm.broadcast.models import MessageRequest
from ecrm.campaigns.assignment import arms_of, assign, in_test_phase
from ecrm.campaigns.models import HOLDOUT, ArmReport, Campaign, CampaignCompleted, CampaignStatusChanged, Content
from ecrm.campaigns.plan import PlannedChunk, local_instant, parse_timestamp, plan_chunks, replan, timestamp
from ecrm.campaigns.ports import (
    MAX_REQUESTS_PER_CALL,
    AudienceSource,
    BroadcastGateway,
    ManifestStore,
    RecipientZones,
)
from ecrm.campaigns.report import winner
from ecrm.campaigns.store import CampaignStore, StaleRecord
from ecrm.core.clock import Clock
from ecrm.core.errors import NotFound

CHUNK_SIZE = 500
MANIFEST_PREFIX = "campaign-runs/"
Phase = Literal["all", "test", "rest"]


def message_step(run: int, arm: str) -> str:
    """Broadcast's step of a campaign message: a recurring campaign's next run is a new message."""
    return f"r{run}.{arm}"


def manifest_key(campaign_id: str, run: int, phase: Phase = "all") -> str:
    suffix = "-rest" if phase == "rest" else ""
    return f"{MANIFEST_PREFIX}{campaign_id}/run-{run:06d}{suffix}.json"


class WinnerNotPicked(RuntimeError):
    """A rest-phase chunk before its winner: the task fails and Step Functions retries it."""


class CampaignRunSteps:
    def __init__(
        self,
        store: CampaignStore,
        clock: Clock,
        *,
        audiences: AudienceSource,
        manifests: ManifestStore,
        broadcast: BroadcastGateway,
        zones: RecipientZones,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self.store = store
        self.clock = clock
        self.audiences = audiences
        self.manifests = manifests
        self.broadcast = broadcast
        self.zones = zones
        self.chunk_size = chunk_size

    def freeze(self, campaign_id: str, run: int) -> dict[str, Any]:
        """Write the run's manifests; a resumed attempt keeps the audience as the run froze it and paces what is
        left from now (chunks already handed over cost no time, a zone's local time still holds)."""
        campaign = self._campaign(campaign_id)
        now = self.clock.now()
        frozen_first = self.manifests.read(manifest_key(campaign_id, run))
        resumed = frozen_first is not None
        if frozen_first is None:
            audience = self.audiences.customers(campaign.audience)
            treated = self._treated(campaign, audience)
            first, rest = self._phases(campaign, audience, treated)
            planned = self._plan(campaign, self._starts(campaign, first, now), treated)
        else:
            planned = [PlannedChunk(parse_timestamp(i["not_before"]), list(i["customer_ids"])) for i in frozen_first]
            frozen_rest = self.manifests.read(manifest_key(campaign_id, run, "rest")) or []
            rest = [str(c) for item in frozen_rest for c in item["customer_ids"]]
            audience = [c for chunk in planned for c in chunk.customer_ids] + rest
            treated = self._treated(campaign, audience)

        def handed(offset: int) -> Callable[[int], bool]:
            return lambda n: resumed and self.store.chunk_done(campaign_id, run, offset + n)

        per_minute = campaign.throttle_per_minute
        planned = replan(planned, start=now, per_minute=per_minute, sends=treated.__contains__, skip=handed(0))
        phase: Phase = "all" if campaign.auto_winner is None else "test"
        items = self._items(campaign_id, run, phase, planned, first_chunk=0)
        location = self.manifests.write(manifest_key(campaign_id, run), items)
        frozen: dict[str, Any] = {**location, "chunks": len(items), "audience": len(audience), "phased": False}
        if campaign.auto_winner is not None:
            decide_at = self._decide_at(campaign, planned, now)
            later = self._plan(campaign, [(decide_at, rest)], treated)
            later = replan(
                later, start=decide_at, per_minute=per_minute, sends=treated.__contains__, skip=handed(len(items))
            )
            rest_items = self._items(campaign_id, run, "rest", later, first_chunk=len(items))
            rest_location = self.manifests.write(manifest_key(campaign_id, run, "rest"), rest_items)
            frozen.update(
                phased=True,
                rest_key=rest_location["key"],
                decide_at=timestamp(decide_at),
                chunks=len(items) + len(rest_items),
            )
        return frozen

    @staticmethod
    def _treated(campaign: Campaign, audience: Sequence[str]) -> set[str]:
        arms = arms_of(campaign)
        return {c for c in audience if assign(campaign.campaign_id, c, arms) != HOLDOUT}

    @staticmethod
    def _phases(campaign: Campaign, audience: list[str], treated: set[str]) -> tuple[list[str], list[str]]:
        """(the first phase, the rest): everyone and nobody, or an auto-winner's test phase with the holdout."""
        if campaign.auto_winner is None:
            return audience, []
        share = campaign.auto_winner.test_share
        testing = {c for c in treated if in_test_phase(campaign.campaign_id, c, share)}
        first = [c for c in audience if c not in treated or c in testing]
        return first, [c for c in audience if c in treated and c not in testing]

    def send_chunk(
        self, campaign_id: str, run: int, chunk: int, customer_ids: list[str], phase: str = "all"
    ) -> dict[str, Any]:
        if phase not in ("all", "test", "rest"):
            raise ValueError(f"unknown phase {phase!r}")
        campaign = self._campaign(campaign_id)
        if campaign.status != "running" or campaign.run != run:
            return {"chunk": chunk, "outcome": f"skipped:{campaign.status}"}
        if self.store.chunk_done(campaign_id, run, chunk):
            return {"chunk": chunk, "outcome": "already_done"}
        if phase == "rest" and campaign.winner is None:
            raise WinnerNotPicked(f"campaign {campaign_id} has no winner yet for chunk {chunk}")
        arms = arms_of(campaign)
        variants = {v.key: v for v in campaign.variants}
        counts: dict[str, dict[str, int]] = {}
        requests: list[MessageRequest] = []
        recipients: dict[str, str] = {}
        for customer_id in customer_ids:
            arm = assign(campaign_id, customer_id, arms)
            if phase == "rest" and arm != HOLDOUT and campaign.winner is not None:
                arm = campaign.winner
            recipients[customer_id] = arm
            tally = counts.setdefault(arm, {"targeted": 0, "requested": 0})
            tally["targeted"] += 1
            if arm == HOLDOUT:
                continue
            tally["requested"] += 1
            requests.append(self._request(campaign, run, customer_id, variants[arm].content, arm))
        self.store.record_recipients(campaign_id, run, recipients)  # conversions are attributed by it
        for start in range(0, len(requests), MAX_REQUESTS_PER_CALL):
            self.broadcast.request(requests[start : start + MAX_REQUESTS_PER_CALL])
        recorded = self.store.record_chunk(campaign_id, run, chunk, counts, self.clock.now())
        return {"chunk": chunk, "outcome": "sent" if recorded else "already_done", "requested": len(requests)}

    def pick_winner(self, campaign_id: str, run: int) -> dict[str, Any]:
        """Record the variant with the best rate of the auto-winner's metric; a second call keeps the first pick."""
        for _ in range(3):
            campaign = self._campaign(campaign_id)
            if campaign.winner is not None or campaign.auto_winner is None:
                return {"winner": campaign.winner}
            if campaign.status != "running" or campaign.run != run:
                return {"winner": None, "status": campaign.status}
            counts = self.store.arm_counts(campaign_id)
            arms = [
                ArmReport(arm=arm.key, **{"targeted": 0, "requested": 0, **counts.get(arm.key, {})})
                for arm in arms_of(campaign)
            ]
            best = winner(arms, campaign.auto_winner.metric) or campaign.variants[0].key
            now = self.clock.now()
            picked = campaign.model_copy(update={"winner": best, "updated_at": now, "version": campaign.version + 1})
            try:
                self.store.save_campaign(
                    picked, expected_version=campaign.version, events=[], correlation_id=None, now=now
                )
            except StaleRecord:
                continue  # paused or resumed meanwhile: read it again
            return {"winner": best}
        raise RuntimeError(f"campaign {campaign_id} kept changing while its winner was picked")

    def _starts(
        self, campaign: Campaign, customer_ids: Sequence[str], now: datetime
    ) -> list[tuple[datetime, list[str]]]:
        """Recipients grouped by when they may start: now, or their zone's local time on the schedule's date."""
        rule = campaign.schedule
        if rule.kind != "local_time" or rule.at is None or rule.local_time is None or not customer_ids:
            return [(now, list(customer_ids))]
        zones = self.zones.zones(list(customer_ids))
        groups: dict[datetime, list[str]] = defaultdict(list)
        day = rule.at.date()
        for customer_id in customer_ids:
            groups[local_instant(day, rule.local_time, zones.get(customer_id))].append(customer_id)
        return sorted(groups.items())

    def _plan(
        self, campaign: Campaign, groups: list[tuple[datetime, list[str]]], treated: set[str]
    ) -> list[PlannedChunk]:
        return plan_chunks(
            groups, chunk_size=self.chunk_size, per_minute=campaign.throttle_per_minute, sends=treated.__contains__
        )

    def _decide_at(self, campaign: Campaign, planned: list[PlannedChunk], now: datetime) -> datetime:
        """The test phase's last chunk plus the test hours, counted from the launch (a resumed run keeps it)."""
        if campaign.winner is not None or campaign.auto_winner is None:
            return now
        span = max((chunk.not_before for chunk in planned), default=now) - now
        started = campaign.launched_at or now
        return max(now, started + span + timedelta(hours=campaign.auto_winner.test_hours))

    @staticmethod
    def _items(
        campaign_id: str, run: int, phase: Phase, planned: list[PlannedChunk], *, first_chunk: int
    ) -> list[dict[str, Any]]:
        return [
            {
                "campaign_id": campaign_id,
                "run": run,
                "chunk": first_chunk + n,
                "phase": phase,
                "not_before": timestamp(chunk.not_before),
                "customer_ids": chunk.customer_ids,
            }
            for n, chunk in enumerate(planned)
        ]

    def finish(self, campaign_id: str, run: int, chunks: int, correlation_id: str | None = None) -> dict[str, Any]:
        campaign = self._campaign(campaign_id)
        if campaign.status != "running" or campaign.run != run:
            if campaign.run != run or campaign.status != "paused":  # a paused run resumes from its manifests
                self._forget_manifests(campaign_id, run)
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
        self._forget_manifests(campaign_id, run)
        return {"status": status}

    def _forget_manifests(self, campaign_id: str, run: int) -> None:
        """A run over needs its audience no more: its manifests go (each holds customer ids, which an erasure
        would otherwise have to find in every past run). A crash before this leaves them for the next finish
        of the run, a retry, and for the erasure's search of the runs still under way."""
        phases: tuple[Phase, ...] = ("all", "rest")
        for phase in phases:
            self.manifests.delete(manifest_key(campaign_id, run, phase))

    def _request(self, campaign: Campaign, run: int, customer_id: str, content: Content, arm: str) -> MessageRequest:
        return campaign_message(campaign, run, customer_id, content, arm)

    def _campaign(self, campaign_id: str) -> Campaign:
        campaign = self.store.campaign(campaign_id)
        if campaign is None:
            raise NotFound(f"no campaign {campaign_id}")
        return campaign


def campaign_message(campaign: Campaign, run: int, customer_id: str, content: Content, arm: str) -> MessageRequest:
    """The request broadcast gets for one recipient of an arm: the run's, and the dry run's preview of it."""
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
