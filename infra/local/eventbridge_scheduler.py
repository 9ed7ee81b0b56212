"""EventBridge Scheduler, fired from the local clock (moto 5.2.5 stores schedules and never fires them).

The schedules are moto's own (created by provisioning from `AWS::Scheduler::Schedule` or at run
time through the `scheduler` API): this reads moto's backend in process, so an update, a delete
or a deleted group takes effect at the next firing. What fires, as EventBridge Scheduler does it:
- `cron()` and `rate()` in `ScheduleExpressionTimezone`, `at()` once (`schedule_expressions`);
  `rate()` starts at `StartDate`, or at once when there is none; nothing fires before `StartDate`
  or after `EndDate`; a DISABLED schedule does not fire.
- `ActionAfterCompletion: DELETE` deletes a one-time schedule once it has fired, and a recurring
  one once its `EndDate` has passed.
- `FlexibleTimeWindow` `FLEXIBLE`: the invocation comes a deterministic number of seconds (a hash of
  the schedule and the occurrence) within `MaximumWindowInMinutes` after the scheduled time.
- Targets: a Lambda function (invoked with `Input`; the function's own error is Lambda's business, as
  with Scheduler's asynchronous invoke), a state machine (StartExecution), an SQS queue (SendMessage,
  `SqsParameters.MessageGroupId`), an event bus (PutEvents with `EventBridgeParameters`), an SNS
  topic (Publish), and universal targets `arn:aws:scheduler:::aws-sdk:<service>:<apiAction>` whose
  `Input` is the API's parameters. The context attributes `<aws.scheduler.schedule-arn>`,
  `<aws.scheduler.scheduled-time>`, `<aws.scheduler.execution-id>` and `<aws.scheduler.attempt-number>`
  are replaced in `Input`.
- A failed invocation is retried (at once, locally) up to `RetryPolicy.MaximumRetryAttempts` when
  the error is retryable (throttling, 5xx), then sent to `DeadLetterConfig.Arn` as Scheduler's
  dead-letter event: the body is the input, the message attributes say what failed.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from infra.local import schedule_expressions
from infra.local.schedule_expressions import At, Cron, Rate

UNIVERSAL = re.compile(r"^arn:aws[a-z-]*:scheduler:::aws-sdk:([a-z0-9-]+):([A-Za-z0-9]+)$")
# Universal targets name services as the SDKs' service ids; boto3 knows a few by other names.
BOTO3_NAMES = {"sfn": "stepfunctions", "eventbridge": "events", "cloudwatchlogs": "logs"}
RETRYABLE = {"ThrottlingException", "Throttling", "TooManyRequestsException", "ServiceUnavailable", "InternalFailure"}
ONE_MICROSECOND = timedelta(microseconds=1)
AT_GRACE = timedelta(seconds=60)


class TargetFailed(Exception):
    def __init__(self, code: str, message: str, *, retryable: bool) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable


@dataclass
class Invocation:
    """One firing, kept for tests and `ecrm local clock` to report."""

    schedule_arn: str
    scheduled_time: datetime
    invoked_at: datetime
    target_arn: str
    attempts: int
    outcome: str  # "ok", "dead-lettered", "failed"


@dataclass
class _Tracked:
    version: Any
    cursor: datetime  # occurrences strictly after this are still to come
    scheduled: datetime | None = None
    invoke_at: datetime | None = None
    done: bool = False
    execution_ids: list[str] = field(default_factory=list)


class SchedulerEmulation:
    def __init__(
        self,
        *,
        client: Callable[[str], Any],
        account: str,
        region: str,
        clock: Any,
        on_error: Callable[[str, Exception], None] | None = None,
    ) -> None:
        self.client = client
        self.account = account
        self.region = region
        self.clock = clock
        self.on_error = on_error
        self.invocations: list[Invocation] = []
        self._tracked: dict[str, _Tracked] = {}
        self._clients: dict[str, Any] = {}

    # -- moto's schedules -----------------------------------------------------------------------------
    def schedules(self) -> dict[str, Any]:
        """moto's schedules by ARN (read in process: moto keeps them per group)."""
        from moto.scheduler.models import scheduler_backends

        backend = scheduler_backends[self.account][self.region]
        for _ in range(3):  # the server's threads may change the groups while they are copied
            try:
                return {s.arn: s for g in list(backend.schedule_groups.values()) for s in list(g.schedules.values())}
            except RuntimeError:
                continue
        return {}

    def _sync(self, now: datetime) -> dict[str, Any]:
        current = self.schedules()
        for arn in set(self._tracked) - set(current):
            del self._tracked[arn]
        for arn, schedule in current.items():
            tracked = self._tracked.get(arn)
            if tracked is None or tracked.version != schedule.last_modified_date:
                tracked = _Tracked(version=schedule.last_modified_date, cursor=now)
                self._tracked[arn] = tracked
                self._plan(schedule, tracked, first=True)
        return current

    def _plan(self, schedule: Any, tracked: _Tracked, *, first: bool = False) -> None:
        """The next occurrence after the cursor (and when, within its flexible window, it is invoked)."""
        tracked.scheduled = tracked.invoke_at = None
        if tracked.done:
            return
        try:
            expression = schedule_expressions.parse(
                schedule.schedule_expression, schedule.schedule_expression_timezone or "UTC"
            )
        except ValueError as exc:
            tracked.done = True
            self._report(schedule.arn, exc)
            return
        start, end = _date(schedule.start_date), _date(schedule.end_date)
        cursor = tracked.cursor
        if start is not None and start - ONE_MICROSECOND > cursor:
            cursor = start - ONE_MICROSECOND
        scheduled: datetime | None
        if isinstance(expression, At):
            # Once; created within the minute of its time (Scheduler's precision) it still fires.
            scheduled = expression.when if first and expression.when > cursor - AT_GRACE else None
        elif isinstance(expression, Rate):
            anchor = start or tracked.cursor
            scheduled = expression.next_after(anchor, cursor - ONE_MICROSECOND if first else cursor)
        else:
            assert isinstance(expression, Cron)
            scheduled = expression.next_after(cursor)
        if scheduled is None or (end is not None and scheduled > end):
            tracked.done = True
            return
        tracked.scheduled = scheduled
        tracked.invoke_at = scheduled + _flexible_delay(schedule, scheduled)

    # -- driven by the local clock ------------------------------------------------------------------
    def next_due(self, now: datetime) -> datetime | None:
        current = self._sync(now)
        due = [
            t.invoke_at
            for arn, t in self._tracked.items()
            if t.invoke_at is not None and current[arn].state == "ENABLED"
        ]
        return min(due, default=None)

    def run_due(self, now: datetime) -> list[str]:
        current = self._sync(now)
        started: list[str] = []
        queue = [
            (t.invoke_at, arn)
            for arn, t in self._tracked.items()
            if t.invoke_at is not None and t.invoke_at <= now and current[arn].state == "ENABLED"
        ]
        heapq.heapify(queue)
        while queue:
            _, arn = heapq.heappop(queue)
            schedule, tracked = current[arn], self._tracked[arn]
            assert tracked.scheduled is not None
            scheduled = tracked.scheduled
            tracked.cursor = scheduled
            self._plan(schedule, tracked)
            if tracked.invoke_at is not None and tracked.invoke_at <= now:
                heapq.heappush(queue, (tracked.invoke_at, arn))
            started.extend(self._invoke(schedule, scheduled, now))
        for arn, tracked in list(self._tracked.items()):  # fired its at(), or past its EndDate
            if tracked.done and current[arn].action_after_completion == "DELETE":
                self._delete(current[arn])
        return started

    def _delete(self, schedule: Any) -> None:
        try:
            self._client("scheduler").delete_schedule(Name=schedule.name, GroupName=schedule.group_name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                self._report(schedule.arn, exc)
        self._tracked.pop(schedule.arn, None)

    # -- invoking the target --------------------------------------------------------------------------
    def _invoke(self, schedule: Any, scheduled: datetime, now: datetime) -> list[str]:
        target = schedule.target
        policy = target.get("RetryPolicy") or {}
        retries = int(policy.get("MaximumRetryAttempts", 185))
        execution_id = str(uuid.uuid4())
        attempt = 0
        while True:
            attempt += 1
            try:
                started = self._call_target(schedule, scheduled, execution_id, attempt)
            except TargetFailed as failure:
                if failure.retryable and attempt <= retries:
                    continue
                outcome = self._dead_letter(schedule, scheduled, execution_id, attempt, failure)
                self.invocations.append(Invocation(schedule.arn, scheduled, now, target["Arn"], attempt, outcome))
                return []
            self.invocations.append(Invocation(schedule.arn, scheduled, now, target["Arn"], attempt, "ok"))
            return started

    def _call_target(self, schedule: Any, scheduled: datetime, execution_id: str, attempt: int) -> list[str]:
        target = schedule.target
        arn: str = target["Arn"]
        text = _with_context(target.get("Input"), schedule.arn, scheduled, execution_id, attempt)
        try:
            universal = UNIVERSAL.match(arn)
            if universal:
                service, action = universal.groups()
                client = self._client(BOTO3_NAMES.get(service, service))
                method = getattr(client, _snake(action), None)
                if method is None:
                    raise TargetFailed("ValidationException", f"{service} has no action {action}", retryable=False)
                result = method(**json.loads(text or "{}"))
                return [result["executionArn"]] if "executionArn" in result else []
            kind = arn.split(":")[2]
            if kind == "lambda":
                response = self._client("lambda").invoke(FunctionName=arn, Payload=(text or "{}").encode())
                if "FunctionError" in response:
                    self._report(arn, RuntimeError(response["Payload"].read().decode()[:500]))
                return []
            if kind == "states":
                name = f"{schedule.name[:40]}-{execution_id}"
                return [
                    self._client("stepfunctions").start_execution(
                        stateMachineArn=arn, name=name[:80], input=text or "{}"
                    )["executionArn"]
                ]
            if kind == "sqs":
                sqs = self._client("sqs")
                _, _, _, _, owner, queue = arn.split(":", 5)
                url = sqs.get_queue_url(QueueName=queue, QueueOwnerAWSAccountId=owner)["QueueUrl"]
                extra = {}
                group = (target.get("SqsParameters") or {}).get("MessageGroupId")
                if group:
                    extra["MessageGroupId"] = group
                sqs.send_message(QueueUrl=url, MessageBody=text or "", **extra)
                return []
            if kind == "events":
                parameters = target.get("EventBridgeParameters") or {}
                result = self._client("events").put_events(
                    Entries=[
                        {
                            "EventBusName": arn,
                            "Source": parameters.get("Source", "aws.scheduler"),
                            "DetailType": parameters.get("DetailType", "Scheduled Event"),
                            "Detail": text or "{}",
                            "Resources": [schedule.arn],
                        }
                    ]
                )
                if result.get("FailedEntryCount"):
                    entry = result["Entries"][0]
                    raise TargetFailed(entry.get("ErrorCode", "Failed"), entry.get("ErrorMessage", ""), retryable=False)
                return []
            if kind == "sns":
                self._client("sns").publish(TopicArn=arn, Message=text or "")
                return []
            raise TargetFailed("ValidationException", f"the local cloud does not invoke {arn}", retryable=False)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400))
            code = str(error.get("Code", "ClientError"))
            raise TargetFailed(
                code, str(error.get("Message", exc)), retryable=code in RETRYABLE or status >= 500
            ) from exc
        except (ValueError, TypeError) as exc:  # Input that is not the API's parameters
            raise TargetFailed("ValidationException", str(exc), retryable=False) from exc

    def _dead_letter(
        self, schedule: Any, scheduled: datetime, execution_id: str, attempts: int, failure: TargetFailed
    ) -> str:
        dlq = (schedule.target.get("DeadLetterConfig") or {}).get("Arn")
        self._report(schedule.arn, failure)
        if not dlq:
            return "failed"
        attributes = {
            "ERROR_CODE": failure.code,
            "ERROR_MESSAGE": failure.message,
            "EXECUTION_ID": execution_id,
            "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts" if failure.retryable else "NonRetryableError",
            "RETRY_ATTEMPTS": str(attempts - 1),
            "SCHEDULE_ARN": schedule.arn,
            "TARGET_ARN": schedule.target["Arn"],
        }
        sqs = self._client("sqs")
        _, _, _, _, owner, queue = dlq.split(":", 5)
        url = sqs.get_queue_url(QueueName=queue, QueueOwnerAWSAccountId=owner)["QueueUrl"]
        text = _with_context(schedule.target.get("Input"), schedule.arn, scheduled, execution_id, attempts)
        sqs.send_message(
            QueueUrl=url,
            MessageBody=text or "{}",
            MessageAttributes={
                k: {"DataType": "Number" if k == "RETRY_ATTEMPTS" else "String", "StringValue": v}
                for k, v in attributes.items()
            },
        )
        return "dead-lettered"

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.client(service)
        return self._clients[service]

    def _report(self, where: str, exc: Exception) -> None:
        if self.on_error:
            self.on_error(where, exc)


def _date(value: Any) -> datetime | None:
    """StartDate/EndDate as moto keeps them: epoch seconds from the API, or an ISO string."""
    if value in (None, ""):
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value)):
        return datetime.fromtimestamp(float(value), UTC)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _flexible_delay(schedule: Any, scheduled: datetime) -> timedelta:
    window = schedule.flexible_time_window or {}
    if window.get("Mode") != "FLEXIBLE":
        return timedelta(0)
    seconds = int(window.get("MaximumWindowInMinutes", 1)) * 60
    digest = hashlib.sha256(f"{schedule.arn}|{scheduled.isoformat()}".encode()).digest()
    return timedelta(seconds=int.from_bytes(digest[:8], "big") % seconds)


def _with_context(text: str | None, schedule_arn: str, scheduled: datetime, execution_id: str, attempt: int) -> str:
    if not text:
        return text or ""
    for name, value in (
        ("schedule-arn", schedule_arn),
        ("scheduled-time", scheduled.strftime("%Y-%m-%dT%H:%M:%SZ")),
        ("execution-id", execution_id),
        ("attempt-number", str(attempt)),
    ):
        text = text.replace(f"<aws.scheduler.{name}>", value)
    return text


def _snake(action: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", action[0].lower() + action[1:]).lower()
