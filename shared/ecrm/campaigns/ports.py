"""What the campaigns engine needs from outside, as small interfaces the services take (tests pass fakes).

The adapters here take their AWS clients from the wiring; none imports boto3.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from ecrm.broadcast.models import MessageRequest, PolicyPreview, TestMessage, TestOutcome
from ecrm.campaigns.journeys import CustomerFacts
from ecrm.campaigns.models import INLINE_LIST_LIMIT, Audience, Campaign, StoredList
from ecrm.campaigns.plan import earliest_local_instant
from ecrm.core.errors import Conflict, InvalidInput, ServiceUnavailable
from ecrm.customers.models import CONTACT_CARDS_PER_CALL, ContactCards

MAX_REQUESTS_PER_CALL = 100
LIST_PREFIX = "campaign-audiences/"  # long uploaded lists in the engine's bucket (`infra/engines/campaigns.py`)


class BroadcastGateway(Protocol):
    def request(self, messages: list[MessageRequest]) -> list[str]:
        """Hand messages to broadcast (at most 100), each through its idempotent request; their message ids."""
        ...


class PolicyPreviewer(Protocol):
    def preview(self, messages: list[MessageRequest]) -> list[PolicyPreview]:
        """What broadcast's delivery policy would decide now for each message (at most 100); nothing is sent."""
        ...


class ProofSender(Protocol):
    def send_tests(self, tests: list[TestMessage]) -> list[TestOutcome]:
        """Send test messages to raw staff addresses through broadcast (at most 100), each once per key."""
        ...


class RunStarter(Protocol):
    def start(self, campaign_id: str, run: int, attempt: int) -> str:
        """Start (or find, by its name) the run's execution; its ARN."""
        ...


class CampaignScheduler(Protocol):
    def schedule(self, campaign: Campaign) -> None: ...

    def unschedule(self, campaign_id: str) -> None: ...


class ManifestStore(Protocol):
    def write(self, key: str, items: list[dict[str, Any]]) -> dict[str, str]:
        """Write a JSON array the run's Distributed Map reads with its S3 ItemReader; {bucket, key}."""
        ...

    def read(self, key: str) -> list[dict[str, Any]] | None:
        """The array written under `key` before (a resumed run's), None when there is none."""
        ...

    def keys(self, prefix: str) -> list[str]:
        """The manifests under `prefix` (those of runs not finished: a finished run deletes its own)."""
        ...

    def delete(self, key: str) -> None:
        """Remove a manifest; removing one already gone is not an error."""
        ...


class AudienceSource(Protocol):
    def customers(self, audience: Audience) -> list[str]: ...

    def keep(self, campaign_id: str, audience: Audience) -> Audience:
        """The audience as the campaign's item holds it (a long list kept apart)."""
        ...


class RecipientZones(Protocol):
    def zones(self, customer_ids: list[str]) -> dict[str, str]:
        """Each customer's IANA time zone, as the customer store holds it; missing ones are left out."""
        ...


class SegmentMembers(Protocol):
    def members(self, segment_id: str) -> list[str]: ...


class AudienceLists(Protocol):
    def put(self, campaign_id: str, customer_ids: list[str]) -> StoredList:
        """Keep a campaign's uploaded list; where it is and how many ids it holds."""
        ...

    def get(self, stored: StoredList) -> list[str]: ...


class CampaignAudience:
    """The uploaded list (kept in the item, or as an object when long), plus the members of any of the segments,
    minus the members of every excluded one.

    Without a source of segment members (a function not wired to the lake), a segment audience is refused at
    dry run and launch rather than sent to nobody.
    """

    def __init__(self, segments: SegmentMembers | None = None, lists: AudienceLists | None = None) -> None:
        self.segments = segments
        self.lists = lists

    def keep(self, campaign_id: str, audience: Audience) -> Audience:
        """A list of more than `INLINE_LIST_LIMIT` ids goes to its own object; a shorter one stays in the item."""
        if audience.stored_list is not None or audience.erased:
            raise InvalidInput("audience.stored_list and audience.erased are set by the engine: send customer_ids")
        if len(audience.customer_ids) <= INLINE_LIST_LIMIT:
            return audience
        if self.lists is None:
            raise ServiceUnavailable(
                f"lists of more than {INLINE_LIST_LIMIT} customer_ids need the campaigns' list bucket, which is not "
                "configured here"
            )
        stored = self.lists.put(campaign_id, list(dict.fromkeys(audience.customer_ids)))
        return audience.model_copy(update={"customer_ids": [], "stored_list": stored})

    def customers(self, audience: Audience) -> list[str]:
        chosen = dict.fromkeys(audience.customer_ids)
        if audience.stored_list is not None:
            if self.lists is None:
                raise ServiceUnavailable("the campaigns' list bucket is not configured")
            chosen.update(dict.fromkeys(self.lists.get(audience.stored_list)))
        wanted = [*audience.segment_ids, *audience.exclude_segment_ids]
        if wanted and self.segments is None:
            raise Conflict(
                "segment audiences are not available here: give the campaign a list of customer_ids",
                reason="segment_audience_unavailable",
            )
        excluded: set[str] = set()
        if self.segments is not None:
            for segment_id in audience.segment_ids:
                chosen.update(dict.fromkeys(self.segments.members(segment_id)))
            for segment_id in audience.exclude_segment_ids:
                excluded.update(self.segments.members(segment_id))
        return [customer_id for customer_id in chosen if customer_id not in excluded]


class BuiltSegmentAudiences:
    """A segment's members as its last audience build left them in the lake bucket (ADR 7): a manifest listing
    CSV parts of customer ids. The campaigns engine learns each build from the analysis engine's
    `AudienceBuilt` event (`latest` reads what it kept), so it reads no table of the analysis engine. A
    segment never built (a static list, or one created before any build) is a 409 that says to build it."""

    def __init__(self, client: Any, latest: Callable[[str], str | None]) -> None:
        self.client = client
        self.latest = latest

    def members(self, segment_id: str) -> list[str]:
        location = self.latest(segment_id)
        if location is None:
            raise Conflict(
                f"segment {segment_id} has no built audience yet: build it (POST /segments/{segment_id}/build) "
                "and launch once the build completed",
                reason="segment_audience_unbuilt",
            )
        manifest = json.loads(self._read(location))
        members: list[str] = []
        for part in manifest.get("parts", []):
            rows = csv.DictReader(io.StringIO(self._read(str(part["location"]))))
            members += [row["customer_id"] for row in rows if row.get("customer_id")]
        return members

    def _read(self, location: str) -> str:
        bucket, _, key = location.removeprefix("s3://").partition("/")
        return str(self.client.get_object(Bucket=bucket, Key=key)["Body"].read().decode())


class S3AudienceLists:
    """Long uploaded lists as objects of the engine's bucket, one id a line, under `LIST_PREFIX`. The object is
    written before the campaign that names it: a failed save leaves an object nobody reads, never a campaign
    without its list."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def put(self, campaign_id: str, customer_ids: list[str]) -> StoredList:
        key = f"{LIST_PREFIX}{campaign_id}.txt"
        body = "\n".join(customer_ids).encode()
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="text/plain")
        return StoredList(key=key, count=len(customer_ids))

    def get(self, stored: StoredList) -> list[str]:
        body = self.client.get_object(Bucket=self.bucket, Key=stored.key)["Body"].read().decode()
        return [line for line in body.split("\n") if line]


class StepFunctionsRunStarter:
    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self.client = client
        self.state_machine_arn = state_machine_arn

    def start(self, campaign_id: str, run: int, attempt: int) -> str:
        name = f"{campaign_id}-r{run}-a{attempt}"
        document = json.dumps({"campaign_id": campaign_id, "run": run, "fire": False})
        try:
            response = self.client.start_execution(stateMachineArn=self.state_machine_arn, name=name, input=document)
        except self.client.exceptions.ExecutionAlreadyExists:
            # the same name is the same run attempt: started before a crash or by a retried request
            return f"{self.state_machine_arn.replace(':stateMachine:', ':execution:')}:{name}"
        return str(response["executionArn"])


class S3ManifestStore:
    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def write(self, key: str, items: list[dict[str, Any]]) -> dict[str, str]:
        body = json.dumps(items, separators=(",", ":")).encode()
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json")
        return {"bucket": self.bucket, "key": key}

    def read(self, key: str) -> list[dict[str, Any]] | None:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None
        items: list[dict[str, Any]] = json.loads(body)
        return items

    def keys(self, prefix: str) -> list[str]:
        found: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            found += [str(entry["Key"]) for entry in page.get("Contents", [])]
        return found

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)


class LambdaBroadcastGateway:
    """Broadcast's bulk request function (`functions/broadcast/task_request_messages.py`), invoked directly."""

    def __init__(self, client: Any, function_name: str) -> None:
        self.client = client
        self.function_name = function_name

    def request(self, messages: list[MessageRequest]) -> list[str]:
        answer = self._invoke({}, messages, "message_ids")
        return [str(m) for m in answer["message_ids"]]

    def preview(self, messages: list[MessageRequest]) -> list[PolicyPreview]:
        answer = self._invoke({"operation": "preview"}, messages, "previews")
        return [PolicyPreview.model_validate(p) for p in answer["previews"]]

    def send_tests(self, tests: list[TestMessage]) -> list[TestOutcome]:
        answer = self._invoke({"operation": "test"}, tests, "tests", field="tests")
        return [TestOutcome.model_validate(t) for t in answer["tests"]]

    def _invoke(
        self,
        head: dict[str, Any],
        messages: list[MessageRequest] | list[TestMessage],
        expected: str,
        *,
        field: str = "requests",
    ) -> dict[str, Any]:
        if len(messages) > MAX_REQUESTS_PER_CALL:
            raise ValueError(f"at most {MAX_REQUESTS_PER_CALL} messages per call")
        payload = {**head, field: [m.model_dump(mode="json", exclude_none=True) for m in messages]}
        response = self.client.invoke(FunctionName=self.function_name, Payload=json.dumps(payload).encode())
        answer: dict[str, Any] = json.loads(response["Payload"].read() or b"{}")
        if response.get("FunctionError") or expected not in answer:
            raise RuntimeError(f"broadcast refused the batch: {answer.get('errorMessage', answer)}")
        return answer


class EventBridgeCampaignScheduler:
    """One EventBridge Scheduler schedule per campaign, starting the run state machine with `fire`: its first
    step takes the next run of the campaign, or ends the execution when there is none."""

    def __init__(self, client: Any, group: str, target_arn: str, role_arn: str) -> None:
        self.client = client
        self.group = group
        self.target_arn = target_arn
        self.role_arn = role_arn

    def schedule(self, campaign: Campaign) -> None:
        rule = campaign.schedule
        if rule.kind == "cron":
            expression = rule.cron or ""
        elif rule.kind == "local_time" and rule.at is not None and rule.local_time is not None:
            expression = _at(earliest_local_instant(rule.at.date(), rule.local_time))
        elif rule.at is not None:
            expression = _at(rule.at)
        else:
            return
        self.client.create_schedule(
            Name=campaign.campaign_id,
            GroupName=self.group,
            ScheduleExpression=expression,
            ScheduleExpressionTimezone=rule.timezone if rule.kind == "cron" else "UTC",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={
                "Arn": self.target_arn,
                "RoleArn": self.role_arn,
                "Input": json.dumps({"campaign_id": campaign.campaign_id, "run": 0, "fire": True}),
            },
            ActionAfterCompletion="NONE",
        )

    def unschedule(self, campaign_id: str) -> None:
        try:
            self.client.delete_schedule(Name=campaign_id, GroupName=self.group)
        except self.client.exceptions.ResourceNotFoundException:
            return


def _at(moment: datetime) -> str:
    return f"at({moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec='seconds')})"


def contact_cards(client: Any, function_name: str, customer_ids: list[str]) -> ContactCards:
    """The customer store's contact cards, asked of its contacts function (the owner), 100 at a time."""
    cards = ContactCards()
    for start in range(0, len(customer_ids), CONTACT_CARDS_PER_CALL):
        batch = customer_ids[start : start + CONTACT_CARDS_PER_CALL]
        payload = json.dumps({"operation": "cards", "customer_ids": batch}).encode()
        response = client.invoke(FunctionName=function_name, Payload=payload)
        answer = json.loads(response["Payload"].read() or b"{}")
        if response.get("FunctionError"):
            raise ServiceUnavailable(f"the customer store did not answer: {answer.get('errorMessage', answer)}")
        found = ContactCards.model_validate(answer)
        cards.cards.update(found.cards)
        cards.missing += found.missing
    return cards


class ContactCardZones:
    """Recipients' time zones for a local-time run, from their contact cards (the customer store's own)."""

    def __init__(self, client: Any, function_name: str) -> None:
        self.client = client
        self.function_name = function_name

    def zones(self, customer_ids: list[str]) -> dict[str, str]:
        cards = contact_cards(self.client, self.function_name, customer_ids).cards
        return {c: card.preferences.time_zone for c, card in cards.items() if card.preferences.time_zone}


class ContactCardFacts:
    """What a journey's branches read of a customer, asked of the customer store's contacts function (its
    owner, as broadcast does): the card's profile, its traits' segments and the customer's time zone. An
    unknown or erased customer has no facts: every profile and segment condition is false for them."""

    def __init__(self, client: Any, function_name: str) -> None:
        self.client = client
        self.function_name = function_name

    def facts(self, customer_id: str) -> CustomerFacts:
        card = contact_cards(self.client, self.function_name, [customer_id]).cards.get(customer_id)
        if card is None:
            return CustomerFacts()
        segments = card.traits.get("segments")
        return CustomerFacts(
            profile=dict(card.profile),
            segments=frozenset(str(s) for s in segments) if isinstance(segments, list) else frozenset(),
            timezone=card.preferences.time_zone or "UTC",
        )


RECOMMENDATION_SLOT = "for_you"
ITEM_FIELDS = ("name", "category", "url", "image_url", "price", "currency")


class LambdaRecommendations:
    """A customer's recommendations for a journey's message, asked of the personalization engine's recommend
    function (their owner). Each item is named as personalization's template catalogue names it (`id`,
    `name`, `url`...). A recommender that fails or answers no list gives no items: the message goes out with
    its template's general fallback rather than being held back by an optional extra."""

    def __init__(self, client: Any, function_name: str) -> None:
        self.client = client
        self.function_name = function_name

    def recommend(self, customer_id: str, k: int) -> list[dict[str, Any]]:
        payload = {"operation": "recommend", "customer_id": customer_id, "slot": RECOMMENDATION_SLOT, "k": k}
        response = self.client.invoke(FunctionName=self.function_name, Payload=json.dumps(payload).encode())
        try:
            answer = json.loads(response["Payload"].read() or b"{}")
        except ValueError:
            return []
        items = answer.get("items") if isinstance(answer, dict) and not response.get("FunctionError") else None
        if not isinstance(items, list):
            return []
        return [
            {"id": item["item_id"], **{name: item[name] for name in ITEM_FIELDS if item.get(name) is not None}}
            for item in items[:k]
            if isinstance(item, dict) and isinstance(item.get("item_id"), str)
        ]
