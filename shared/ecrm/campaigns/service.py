"""Use cases of campaigns and journeys: define, dry-run, launch, pause, resume, cancel, report.

A campaign's status moves draft -> scheduled | running -> paused <-> running -> completed, or cancelled from
anything not final; every move is a conditional write with its event in the same transaction. A launch
starts the run's execution by a name made of the campaign, the run and the attempt, so a retried launch
finds the execution it started instead of starting a second; a resume starts a new attempt of the same
run, whose chunks already handed over are skipped (`runs`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

from ecrm.campaigns.assignment import arms_of, assign, in_test_phase
from ecrm.campaigns.models import (
    HOLDOUT,
    ArmCount,
    ArmPolicy,
    ArmReport,
    Campaign,
    CampaignIn,
    CampaignLaunched,
    CampaignList,
    CampaignReport,
    CampaignStatus,
    CampaignStatusChanged,
    DryRun,
    Journey,
    JourneyIn,
    JourneyList,
    JourneyReport,
    TestSendIn,
    TestSendItem,
    TestSendResult,
)
from ecrm.campaigns.plan import earliest_local_instant, minutes_to_send
from ecrm.campaigns.ports import (
    MAX_REQUESTS_PER_CALL,
    AudienceSource,
    CampaignScheduler,
    PolicyPreviewer,
    ProofSender,
    RunStarter,
)
from ecrm.campaigns.proofs import proofs_of
from ecrm.campaigns.report import lifts, with_rates
from ecrm.campaigns.runs import campaign_message
from ecrm.campaigns.store import CampaignStore, StaleRecord
from ecrm.core.clock import Clock
from ecrm.core.errors import Conflict, NotFound, ServiceUnavailable
from ecrm.core.events import DomainEvent
from ecrm.core.ids import new_id

# Where a command may take a campaign from.
PAUSABLE: frozenset[CampaignStatus] = frozenset({"running"})
CANCELLABLE: frozenset[CampaignStatus] = frozenset({"draft", "scheduled", "running", "paused"})
# The run state machine's timeout (`infra/engines/campaigns.py`): a run must end within it.
RUN_LIMIT_MINUTES = 90 * 24 * 60
# Recipients of a dry run whose delivery broadcast's policy previews: enough for the shares of the usual
# reasons, few enough to answer within the API's time (two preview calls).
POLICY_SAMPLE = 200
TOP_REASONS = 5
Record = TypeVar("Record", Campaign, Journey)


class CampaignService:
    def __init__(
        self,
        store: CampaignStore,
        clock: Clock,
        *,
        audiences: AudienceSource,
        runs: RunStarter,
        scheduler: CampaignScheduler,
        previewer: PolicyPreviewer | None = None,
        proofs: ProofSender | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.audiences = audiences
        self.runs = runs
        self.scheduler = scheduler
        self.previewer = previewer  # broadcast's policy preview; none: the dry run counts arms only
        self.proofs = proofs  # broadcast's test sends

    # -- campaigns -------------------------------------------------------------------------------------------
    def create(self, body: CampaignIn, *, actor: str, correlation_id: str | None) -> Campaign:
        now = self.clock.now()
        campaign_id = new_id("cmp_")
        audience = self.audiences.keep(campaign_id, body.audience)
        campaign = Campaign(
            **body.model_dump(exclude={"audience"}),
            audience=audience,
            campaign_id=campaign_id,
            status="draft",
            created_at=now,
            updated_at=now,
            created_by=actor,
        )
        self.store.save_campaign(campaign, expected_version=None, events=[], correlation_id=correlation_id, now=now)
        return campaign

    def get(self, campaign_id: str) -> Campaign:
        campaign = self.store.campaign(campaign_id)
        if campaign is None:
            raise NotFound(f"no campaign {campaign_id}")
        return campaign

    def page(self, limit: int, after: str | None) -> CampaignList:
        items, last = self.store.campaigns(limit, after)
        return CampaignList(items=items, next=last)

    def dry_run(self, campaign_id: str) -> DryRun:
        campaign = self.get(campaign_id)
        audience = self.audiences.customers(campaign.audience)
        arms = arms_of(campaign)
        assigned = {customer_id: assign(campaign_id, customer_id, arms) for customer_id in audience}
        counts = {arm.key: 0 for arm in arms}
        for arm in assigned.values():
            counts[arm] += 1
        treated = len(audience) - counts.get(HOLDOUT, 0)
        test_phase = None
        if campaign.auto_winner is not None:
            share = campaign.auto_winner.test_share
            test_phase = sum(
                1 for c, arm in assigned.items() if arm != HOLDOUT and in_test_phase(campaign_id, c, share)
            )
        policy = self._policy_preview(campaign, assigned) if self.previewer is not None else None
        note = "Recipients per arm as the run will assign them (an auto-winner's rest all get the winner). "
        if policy is None:
            note += (
                "Consent, suppression, quiet hours and caps are decided by broadcast at send time: not previewed here."
            )
        else:
            note += (
                f"`policy` is broadcast's decision now for an even sample of at most {POLICY_SAMPLE} treated "
                "recipients (each with its assigned variant); at send time consents, caps and local times may differ."
            )
        return DryRun(
            campaign_id=campaign_id,
            audience=len(audience),
            arms=[ArmCount(arm=arm, recipients=n) for arm, n in counts.items()],
            policy=policy,
            test_phase=test_phase,
            minutes_to_hand_over=minutes_to_send(treated, campaign.throttle_per_minute),
            note=note,
        )

    def _policy_preview(self, campaign: Campaign, assigned: dict[str, str]) -> list[ArmPolicy]:
        """Every n-th treated recipient up to `POLICY_SAMPLE`, as the run would request them, through broadcast's
        preview: counts per arm of send, defer and suppress, and the top reasons."""
        assert self.previewer is not None
        treated = [(c, arm) for c, arm in assigned.items() if arm != HOLDOUT]
        sample = treated[:: max(1, math.ceil(len(treated) / POLICY_SAMPLE))][:POLICY_SAMPLE]
        contents = {v.key: v.content for v in campaign.variants}
        requests = [campaign_message(campaign, campaign.run + 1, c, contents[arm], arm) for c, arm in sample]
        arm_of = dict(sample)
        tallies = {v.key: ArmPolicy(arm=v.key, sampled=0) for v in campaign.variants}
        reasons: dict[str, dict[str, int]] = {v.key: {} for v in campaign.variants}
        for start in range(0, len(requests), MAX_REQUESTS_PER_CALL):
            try:
                previews = self.previewer.preview(requests[start : start + MAX_REQUESTS_PER_CALL])
            except RuntimeError as exc:
                raise ServiceUnavailable(f"broadcast did not preview the policy: {exc}") from exc
            for preview in previews:
                arm = arm_of[preview.customer_id]
                tally = tallies[arm]
                tally.sampled += 1
                setattr(tally, preview.outcome, getattr(tally, preview.outcome) + 1)
                if preview.outcome != "send":
                    why = f"{preview.outcome}:{preview.reason or 'unknown'}"
                    reasons[arm][why] = reasons[arm].get(why, 0) + 1
        for arm, tally in tallies.items():
            top = sorted(reasons[arm].items(), key=lambda item: (-item[1], item[0]))[:TOP_REASONS]
            tally.reasons = dict(top)
        return list(tallies.values())

    def test_send(self, campaign_id: str, body: TestSendIn, *, idempotency_key: str | None) -> TestSendResult:
        """Each variant to each staff address, rendered with sample data (`proofs`); nothing a customer gets."""
        campaign = self.get(campaign_id)
        if self.proofs is None:
            raise ServiceUnavailable("broadcast's test sends are not configured")
        messages, items = proofs_of(campaign, body.addresses, idempotency_key)
        for start in range(0, len(messages), MAX_REQUESTS_PER_CALL):
            batch = messages[start : start + MAX_REQUESTS_PER_CALL]
            try:
                outcomes = {o.key: o for o in self.proofs.send_tests(batch)}
            except RuntimeError as exc:
                raise ServiceUnavailable(f"broadcast did not take the test sends: {exc}") from exc
            for message in batch:
                outcome = outcomes.get(message.key)
                items.append(
                    TestSendItem(
                        variant=str(message.data["variant"]),
                        channel=message.channel,
                        address=message.address,
                        status=outcome.status if outcome else "failed",
                        reason=outcome.reason if outcome else "no answer from broadcast",
                    )
                )
        return TestSendResult(
            campaign_id=campaign_id,
            items=items,
            note=(
                "Each variant rendered with sample data, sent as a transactional test to the addresses given, never to "
                "a customer and never counted in reports; a retry with the same Idempotency-Key sends nothing twice."
            ),
        )

    def launch(self, campaign_id: str, *, correlation_id: str | None) -> Campaign:
        """Start now, or hand the schedule to the scheduler; on a running campaign, make sure its run started."""
        campaign = self.get(campaign_id)
        if campaign.status == "running":
            if campaign.schedule.kind == "now":  # a schedule's run is its own execution, started by the schedule
                self.runs.start(campaign_id, campaign.run, campaign.attempt)
            return campaign
        if campaign.status != "draft":
            raise Conflict(f"a {campaign.status} campaign cannot be launched", reason="campaign_not_draft")
        audience = self.audiences.customers(campaign.audience)  # refuses an audience the run could not freeze
        self._fits_one_run(campaign, len(audience))
        rule = campaign.schedule
        starts_later = rule.kind in ("at", "cron") or (
            rule.kind == "local_time"
            and rule.at is not None
            and rule.local_time is not None
            and earliest_local_instant(rule.at.date(), rule.local_time) > self.clock.now()
        )
        if starts_later:
            scheduled = self._move(campaign, "scheduled", correlation_id)
            self.scheduler.schedule(scheduled)
            return scheduled
        return self._start_run(campaign, correlation_id)

    def _fits_one_run(self, campaign: Campaign, audience: int) -> None:
        """A run is one execution: what its throttle, local times and test hours add up to must fit in it."""
        treated = audience * (100 - campaign.holdout_share) / 100
        minutes = minutes_to_send(math.ceil(treated), campaign.throttle_per_minute)
        if campaign.schedule.kind == "local_time":
            minutes += 26 * 60  # from the first zone's local time (UTC+14) to the last one's (UTC-12)
        if campaign.auto_winner is not None:
            minutes += campaign.auto_winner.test_hours * 60
        if minutes > RUN_LIMIT_MINUTES:
            raise Conflict(
                f"the run would last about {minutes // 1440} days, over the {RUN_LIMIT_MINUTES // 1440} days one run "
                "may take: raise the throttle or split the audience",
                reason="run_too_long",
            )

    def fire(self, campaign_id: str, *, correlation_id: str | None) -> Campaign | None:
        """The schedule's execution asks for its run: the next run of a scheduled campaign, which that execution
        goes on to perform; None when there is nothing to run (not scheduled any more, or a twin fired first)."""
        campaign = self.get(campaign_id)
        if campaign.status != "scheduled":
            return None
        try:
            return self._start_run(campaign, correlation_id, start=False)
        except Conflict:
            return None

    def pause(self, campaign_id: str, *, correlation_id: str | None) -> Campaign:
        campaign = self.get(campaign_id)
        if campaign.status not in PAUSABLE:
            raise Conflict(f"a {campaign.status} campaign cannot be paused", reason="campaign_not_running")
        return self._move(campaign, "paused", correlation_id)

    def resume(self, campaign_id: str, *, correlation_id: str | None) -> Campaign:
        campaign = self.get(campaign_id)
        if campaign.status != "paused":
            raise Conflict(f"a {campaign.status} campaign cannot be resumed", reason="campaign_not_paused")
        resumed = self._move(campaign, "running", correlation_id, attempt=campaign.attempt + 1)
        self.runs.start(campaign_id, resumed.run, resumed.attempt)
        return resumed

    def cancel(self, campaign_id: str, *, correlation_id: str | None) -> Campaign:
        campaign = self.get(campaign_id)
        if campaign.status not in CANCELLABLE:
            raise Conflict(f"a {campaign.status} campaign cannot be cancelled", reason="campaign_final")
        self.scheduler.unschedule(campaign_id)
        return self._move(campaign, "cancelled", correlation_id)

    def report(self, campaign_id: str) -> CampaignReport:
        campaign = self.get(campaign_id)
        counts = self.store.arm_counts(campaign_id)
        arms = [
            with_rates(ArmReport(arm=arm.key, **{"targeted": 0, "requested": 0, **counts.get(arm.key, {})}))
            for arm in arms_of(campaign)
        ]
        arms.sort(key=lambda a: a.arm == HOLDOUT)
        return CampaignReport(
            campaign_id=campaign_id, status=campaign.status, arms=arms, lift=lifts(arms), winner=campaign.winner
        )

    def _start_run(self, campaign: Campaign, correlation_id: str | None, *, start: bool = True) -> Campaign:
        now = self.clock.now()
        run = campaign.run + 1
        launched = CampaignLaunched(
            campaign_id=campaign.campaign_id,
            run=run,
            arms={arm.key: arm.share for arm in arms_of(campaign)},
            launched_at=now,
        )
        running = self._move(
            campaign, "running", correlation_id, run=run, attempt=0, launched_at=now, extra_events=[launched]
        )
        if start:
            self.runs.start(campaign.campaign_id, run, 0)
        return running

    def _move(
        self,
        campaign: Campaign,
        status: CampaignStatus,
        correlation_id: str | None,
        *,
        extra_events: list[DomainEvent] | None = None,
        **changes: object,
    ) -> Campaign:
        now = self.clock.now()
        moved = campaign.model_copy(
            update={"status": status, "updated_at": now, "version": campaign.version + 1, **changes}
        )
        events: list[DomainEvent] = [
            CampaignStatusChanged(
                campaign_id=campaign.campaign_id, status=status, previous=campaign.status, occurred_at=now
            ),
            *(extra_events or []),
        ]
        _conditional(
            lambda: self.store.save_campaign(
                moved, expected_version=campaign.version, events=events, correlation_id=correlation_id, now=now
            )
        )
        return moved


class JourneyService:
    """Journey definitions and their reports; the runtime that moves customers through them is `journeys`."""

    def __init__(self, store: CampaignStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def create(self, body: JourneyIn, *, actor: str, correlation_id: str | None) -> Journey:
        now = self.clock.now()
        journey = Journey(
            **body.model_dump(),
            journey_id=new_id("jny_"),
            status="draft",
            created_at=now,
            updated_at=now,
            created_by=actor,
        )
        self.store.save_journey(journey, expected_version=None, events=[], correlation_id=correlation_id, now=now)
        return journey

    def get(self, journey_id: str) -> Journey:
        journey = self.store.journey(journey_id)
        if journey is None:
            raise NotFound(f"no journey {journey_id}")
        return journey

    def page(self, limit: int, after: str | None) -> JourneyList:
        items, last = self.store.journeys(limit, after)
        return JourneyList(items=items, next=last)

    def activate(self, journey_id: str, *, correlation_id: str | None) -> Journey:
        return self._set(journey_id, "active", correlation_id)

    def deactivate(self, journey_id: str, *, correlation_id: str | None) -> Journey:
        return self._set(journey_id, "inactive", correlation_id)

    def report(self, journey_id: str) -> JourneyReport:
        self.get(journey_id)
        stats = self.store.journey_stats(journey_id)
        return JourneyReport(
            journey_id=journey_id,
            entered=stats.get("entered", 0),
            active=stats.get("active", 0),
            exited={k.removeprefix("exit_"): v for k, v in stats.items() if k.startswith("exit_")},
            steps={k.removeprefix("step_"): v for k, v in stats.items() if k.startswith("step_")},
        )

    def _set(self, journey_id: str, status: str, correlation_id: str | None) -> Journey:
        journey = self.get(journey_id)
        if journey.status == status:
            return journey
        now = self.clock.now()
        moved = journey.model_copy(update={"status": status, "updated_at": now, "version": journey.version + 1})
        _conditional(
            lambda: self.store.save_journey(
                moved, expected_version=journey.version, events=[], correlation_id=correlation_id, now=now
            )
        )
        return moved


def _conditional(write: Callable[[], None]) -> None:
    try:
        write()
    except StaleRecord as exc:
        raise Conflict("it changed meanwhile: read it again and retry", reason="stale") from exc
