"""What the campaigns engine needs from outside, as small interfaces the services take (tests pass fakes).

The adapters here take their AWS clients from the wiring; none imports boto3.
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any, Protocol

from ecrm.broadcast.models import MessageRequest
from ecrm.campaigns.journeys import CustomerFacts
from ecrm.campaigns.models import Audience, Campaign
from ecrm.core.errors import Conflict, ServiceUnavailable
from ecrm.customers.models import ContactCards

MAX_REQUESTS_PER_CALL = 100


class BroadcastGateway(Protocol):
    def request(self, messages: list[MessageRequest]) -> list[str]:
        """Hand messages to broadcast (at most 100), each through its idempotent request; their message ids."""
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


class AudienceSource(Protocol):
    def customers(self, audience: Audience) -> list[str]: ...


class ListedAudience:
    """The uploaded list of a campaign. Segment audiences need the analysis engine's audience manifest, which
    is not wired yet: such a campaign is refused at dry run and launch rather than sent to nobody."""

    def customers(self, audience: Audience) -> list[str]:
        if audience.segment_ids:
            raise Conflict(
                "segment audiences are not available yet: give the campaign a list of customer_ids",
                reason="segment_audience_unavailable",
            )
        return list(dict.fromkeys(audience.customer_ids))


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


class LambdaBroadcastGateway:
    """Broadcast's bulk request function (`functions/broadcast/task_request_messages.py`), invoked directly."""

    def __init__(self, client: Any, function_name: str) -> None:
        self.client = client
        self.function_name = function_name

    def request(self, messages: list[MessageRequest]) -> list[str]:
        if len(messages) > MAX_REQUESTS_PER_CALL:
            raise ValueError(f"at most {MAX_REQUESTS_PER_CALL} messages per call")
        payload = {"requests": [m.model_dump(mode="json", exclude_none=True) for m in messages]}
        response = self.client.invoke(FunctionName=self.function_name, Payload=json.dumps(payload).encode())
        answer = json.loads(response["Payload"].read() or b"{}")
        if response.get("FunctionError") or "message_ids" not in answer:
            raise RuntimeError(f"broadcast refused the batch: {answer.get('errorMessage', answer)}")
        return [str(m) for m in answer["message_ids"]]


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
        elif rule.at is not None:
            expression = f"at({rule.at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec='seconds')})"
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


class ContactCardFacts:
    """What a journey's branches read of a customer, asked of the customer store's contacts function (its
    owner, as broadcast does): the card's profile, its traits' segments and the customer's time zone. An
    unknown or erased customer has no facts: every profile and segment condition is false for them."""

    def __init__(self, client: Any, function_name: str) -> None:
        self.client = client
        self.function_name = function_name

    def facts(self, customer_id: str) -> CustomerFacts:
        payload = json.dumps({"operation": "cards", "customer_ids": [customer_id]}).encode()
        response = self.client.invoke(FunctionName=self.function_name, Payload=payload)
        answer = json.loads(response["Payload"].read() or b"{}")
        if response.get("FunctionError"):
            raise ServiceUnavailable(f"the customer store did not answer: {answer.get('errorMessage', answer)}")
        card = ContactCards.model_validate(answer).cards.get(customer_id)
        if card is None:
            return CustomerFacts()
        segments = card.traits.get("segments")
        return CustomerFacts(
            profile=dict(card.profile),
            segments=frozenset(str(s) for s in segments) if isinstance(segments, list) else frozenset(),
            timezone=card.preferences.time_zone or "UTC",
        )
