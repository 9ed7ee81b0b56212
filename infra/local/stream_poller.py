"""A DynamoDB stream's event source mapping, run locally as Lambda runs it (`StreamPoller`), tumbling windows
included (`TumblingWindowInSeconds`)."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import takewhile
from typing import Any

from infra.local import stream_writes
from infra.local.event_filters import checked_filter, matches
from infra.local.runtime import FunctionRuntime, InvocationError

LONG_POLL_SECONDS = 20
GET_RECORDS_LIMIT = 1000  # DynamoDB Streams' own maximum per GetRecords
WINDOW_STATE_LIMIT = 1_000_000  # Lambda's limit on a tumbling window's state, per shard
WINDOW_CHECK_SECONDS = 1.0  # an idle poller with a window open reads the clock at least this often
WINDOW_END_MARGIN = 0.05  # seconds past a window's end before an idle poller looks again


class StreamPoller:
    """A DynamoDB stream's event source mapping, run locally as Lambda runs it.

    One shard (moto keeps one per table), read in order from the mapping's starting position;
    records that match none of the mapping's filters are skipped, as Lambda drops them. A batch is
    settled as Lambda settles a stream batch:
    - success (or an empty `batchItemFailures`): the checkpoint moves past the batch;
    - a partial batch response: the checkpoint moves to the lowest sequence number reported, and
      the records from there are retried (an identifier not in the batch fails the whole batch);
    - a function error: with `BisectBatchOnFunctionError` the batch is split in two and retried
      (not counted as a retry), otherwise retried whole;
    - after `MaximumRetryAttempts` retries of a batch, its position goes to the on-failure
      destination (an SQS queue, in Lambda's `DDBStreamBatchInfo` shape) and the checkpoint moves
      past it.
    As with queues, a retry waits `retry_delay` seconds. `MaximumRecordAgeInSeconds` is not
    applied: locally, retries exhaust long before a record would age out.

    With `TumblingWindowInSeconds` (W), records are aggregated in windows as Lambda does: a record
    belongs to the aligned window [floor(t / W) * W, + W) of the time it entered the stream, a
    batch never mixes windows, and each invocation carries its window, the shard, and the `state`
    that the window's previous successful invocation answered ({} at first). A response without a
    `state` object is a function error, settled as above; a failed invocation leaves the state as it
    was. A window ends with one more invocation, without records and with `isFinalInvokeForWindow`,
    before a record of a later window is invoked or once its end has passed by the local clock
    (`now`); that invocation is retried until it succeeds, and the shard waits meanwhile. A state
    answered over 1 MB ends the window early (`isWindowTerminatedEarly`): its next records start
    over from {}. Record times are those moto stamps, in real time: once the local clock runs ahead
    of real time, every window has ended when its records are read, so each batch's window is
    finished as soon as no more of its records wait.

    An idle shard is not polled: with moto's stream in this process (`stream_writes` installed),
    the poller sleeps until its table writes (or `LONG_POLL_SECONDS` pass), then reads at most once
    per `poll_interval` as before; otherwise it polls every `poll_interval` seconds.
    """

    def __init__(
        self,
        mapping: dict[str, Any],
        *,
        streams: Any,
        sqs: Any,
        runtime: FunctionRuntime,
        region: str,
        retry_delay: int = 1,
        poll_interval: float = 0.2,
        on_error: Callable[[str, Exception], None] | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.mapping = mapping
        self.streams = streams
        self.sqs = sqs
        self.runtime = runtime
        self.region = region
        self.retry_delay = retry_delay
        self.poll_interval = poll_interval
        self.on_error = on_error
        self.source_arn = mapping["source_arn"]
        self.table_arn = stream_writes.table_arn(self.source_arn)
        self.function = mapping["function"]
        self.filters = [checked_filter(f) for f in mapping.get("filters") or []]
        self.batch_size = int(mapping["batch_size"])
        self.max_retries = int(mapping.get("maximum_retry_attempts", -1))
        self.window_seconds = int(mapping.get("tumbling_window_seconds", 0))
        self.now = now or _utc_now
        self.batches = 0
        self.given_up: list[dict[str, Any]] = []  # the batch infos sent to the on-failure destination
        self._buffer: list[dict[str, Any]] = []  # fetched, not yet checkpointed, in stream order
        self._iterator: str | None = None
        self._shard_id = ""
        self._shard_has_more = False  # the last read was cut at its limit: more records wait
        self._last_read = 0.0  # time.monotonic() of the last GetRecords
        self._limit = self.batch_size
        self._retries = 0
        self._window: _Window | None = None  # the tumbling window open on the shard
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name=f"stream-{self.function}")

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def signal_stop(self) -> None:
        self._stop.set()
        stream_writes.wake_all()

    def stop(self, timeout: float = 5) -> None:
        self.signal_stop()
        self._thread.join(timeout=timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                mark = stream_writes.writes(self.table_arn)  # taken before the read: no write is missed
                if self.poll_once() == 0 and not self._shard_has_more:
                    self._idle(mark)
            except Exception as exc:  # keep polling: the local cloud must survive a bad batch
                if self.on_error:
                    self.on_error(self.function, exc)
                self._stop.wait(1)

    def _idle(self, mark: int) -> None:
        """Wait for the table's next write (moto's stream in process), or poll on an interval;
        with a tumbling window open, wake in time to finish it."""
        limit = self._idle_limit()
        if not stream_writes.installed():
            self._stop.wait(min(self.poll_interval, limit))
            return
        if stream_writes.wait_for_write(self.table_arn, mark, limit, self._stop):
            # Still at most one read per `poll_interval`, as Lambda reads a shard a few times a second:
            # the writes of a burst travel in one batch, not one invocation each.
            self._stop.wait(max(0.0, self.poll_interval - (time.monotonic() - self._last_read)))

    @property
    def window_open(self) -> bool:
        """A tumbling window holds records whose final invocation has not run yet."""
        return self._window is not None

    def _idle_limit(self) -> float:
        """How long an idle shard may wait: with a window open, not past its end by the local clock,
        and no more than `WINDOW_CHECK_SECONDS`, as the clock may be moved forward meanwhile."""
        if self._window is None:
            return LONG_POLL_SECONDS
        left = max(0.0, self._window.end - self.now().timestamp())
        return min(left + WINDOW_END_MARGIN, WINDOW_CHECK_SECONDS)

    def poll_once(self) -> int:
        """Read what is new, run one batch and settle it; the number of records invoked with."""
        if len(self._buffer) < self.batch_size:
            self._fetch()
        if self._window_over() and not self._finish_window():
            return 0  # stopped while the window's final invocation still failed
        if not self._buffer:
            return 0
        batch = self._next_batch()
        self.batches += 1
        try:
            response = self._invoke(batch)
        except InvocationError as exc:
            if self.on_error:
                self.on_error(self.function, exc)
            if self.mapping.get("bisect_on_error") and len(batch) > 1:
                self._limit = max(1, len(batch) // 2)
            else:
                self._retry(batch, 0)
            return len(batch)
        self._keep_state(response)
        retry_at = self._retry_position(response, batch)
        if retry_at is None:
            del self._buffer[: len(batch)]
            self._limit, self._retries = self.batch_size, 0
        else:
            del self._buffer[:retry_at]  # the checkpoint: everything before the first failure is done
            self._retry(batch, retry_at)
        return len(batch)

    def _next_batch(self) -> list[dict[str, Any]]:
        """The records to invoke with: up to the batch limit, and of one window only."""
        batch = self._buffer[: self._limit]
        if not self.window_seconds:
            return batch
        start = self._window_start(batch[0])
        return list(takewhile(lambda record: self._window_start(record) == start, batch))

    def _invoke(self, batch: list[dict[str, Any]]) -> Any:
        """Invoke with a batch, in its tumbling window (opened by its first record) if the mapping has them."""
        if not self.window_seconds:
            return self.runtime.invoke(self.function, {"Records": batch})
        if self._window is None:
            start = self._window_start(batch[0])
            self._window = _Window(start, start + self.window_seconds)
        return self._invoke_in_window(self._window, batch, final=False, early=False)

    def _invoke_in_window(self, window: _Window, records: list[dict[str, Any]], *, final: bool, early: bool) -> Any:
        """Invoke with the window's properties; an answer without a `state` object fails, as Lambda counts it."""
        event = {
            "Records": records,
            "window": {"start": _iso(window.start), "end": _iso(window.end)},
            "state": window.state,
            "shardId": self._shard_id,
            "eventSourceARN": self.source_arn,
            "isFinalInvokeForWindow": final,
            "isWindowTerminatedEarly": early,
        }
        response = self.runtime.invoke(self.function, event)
        if not (isinstance(response, dict) and isinstance(response.get("state"), dict)):
            raise InvocationError(
                self.function,
                {"errorType": "InvalidWindowState", "errorMessage": "a tumbling window's response has no state object"},
            )
        return response

    def _keep_state(self, response: Any) -> None:
        """Keep the state a successful invocation answered; one over Lambda's limit ends the window early."""
        if self._window is None:
            return
        self._window.state = response["state"]
        if len(json.dumps(self._window.state)) > WINDOW_STATE_LIMIT:
            self._finish_window(early=True)

    def _window_over(self) -> bool:
        """Whether the open window ends now: the next record is of another window, or the window's
        end has passed by the local clock with none of its records left to read."""
        if self._window is None:
            return False
        if self._buffer:
            return self._window_start(self._buffer[0]) != self._window.start
        return not self._shard_has_more and self.now().timestamp() >= self._window.end

    def _finish_window(self, *, early: bool = False) -> bool:
        """The open window's final invocation, retried until it succeeds while the shard waits;
        False if the poller stopped first (the window stays open)."""
        window = self._window
        if window is None:
            return True
        while not self._stop.is_set():
            try:
                self._invoke_in_window(window, [], final=True, early=early)
            except InvocationError as exc:
                if self.on_error:
                    self.on_error(self.function, exc)
                self._stop.wait(self.retry_delay)
                continue
            self._window = None  # Lambda deletes the window's state
            return True
        return False

    def _window_start(self, record: dict[str, Any]) -> int:
        """The start of the tumbling window a record belongs to, by the time it entered the stream."""
        created = int(record["dynamodb"]["ApproximateCreationDateTime"])
        return created - created % self.window_seconds

    def _retry_position(self, response: Any, batch: list[dict[str, Any]]) -> int | None:
        """Where in `batch` processing resumes, or None when the whole batch is done."""
        if not self.mapping["report_batch_item_failures"]:
            return None
        failures = (response or {}).get("batchItemFailures", []) if isinstance(response, dict) else []
        if not failures:
            return None
        positions = {r["dynamodb"]["SequenceNumber"]: n for n, r in enumerate(batch)}
        identifiers = [f.get("itemIdentifier") for f in failures]
        if any(i not in positions for i in identifiers):  # Lambda: an unknown identifier fails the whole batch
            return 0
        return min(positions[i] for i in identifiers)

    def _retry(self, batch: list[dict[str, Any]], start: int) -> None:
        self._retries += 1
        if 0 <= self.max_retries < self._retries:
            failed = batch[start:]
            del self._buffer[: len(failed)]
            self._give_up(failed)
            self._limit, self._retries = self.batch_size, 0
            return
        self._stop.wait(self.retry_delay)

    def _give_up(self, records: list[dict[str, Any]]) -> None:
        info = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.runtime.functions[self.function].arn,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": self._retries,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(),
            "DDBStreamBatchInfo": {
                "shardId": self._shard_id,
                "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _arrival(records[0]),
                "approximateArrivalOfLastRecord": _arrival(records[-1]),
                "batchSize": len(records),
                "streamArn": self.source_arn,
            },
        }
        self.given_up.append(info)
        destination = self.mapping.get("on_failure")
        if destination:
            queue_url = self.sqs.get_queue_url(QueueName=destination.rsplit(":", 1)[1])["QueueUrl"]
            self.sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(info))

    def _fetch(self) -> None:
        if self._iterator is None:
            description = self.streams.describe_stream(StreamArn=self.source_arn)["StreamDescription"]
            self._shard_id = description["Shards"][0]["ShardId"]
            self._iterator = self.streams.get_shard_iterator(
                StreamArn=self.source_arn,
                ShardId=self._shard_id,
                ShardIteratorType=self.mapping.get("starting_position") or "TRIM_HORIZON",
            )["ShardIterator"]
        self._last_read = time.monotonic()
        response = self.streams.get_records(ShardIterator=self._iterator, Limit=GET_RECORDS_LIMIT)
        self._iterator = response.get("NextShardIterator") or self._iterator
        records = response.get("Records", [])
        self._shard_has_more = len(records) >= GET_RECORDS_LIMIT
        for record in records:
            shaped = self._lambda_record(record)
            if not self.filters or any(matches(f, shaped) for f in self.filters):
                self._buffer.append(shaped)

    def _lambda_record(self, record: dict[str, Any]) -> dict[str, Any]:
        stream = dict(record["dynamodb"])
        created = stream.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            stream["ApproximateCreationDateTime"] = int(created.timestamp())
        return {
            "eventID": record["eventID"],
            "eventName": record["eventName"],
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": self.region,
            "dynamodb": _json_ready(stream),
            "eventSourceARN": self.source_arn,
        }


@dataclass
class _Window:
    """A tumbling window open on a shard: its bounds in epoch seconds and the state answered so far."""

    start: int
    end: int
    state: dict[str, Any] = field(default_factory=dict)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _iso(epoch_seconds: int) -> str:
    """A window bound as Lambda writes it: `2020-12-09T07:04:00Z`."""
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _arrival(record: dict[str, Any]) -> str:
    created = record["dynamodb"].get("ApproximateCreationDateTime")
    return datetime.fromtimestamp(created, UTC).isoformat() if isinstance(created, int | float) else ""


def _json_ready(value: Any) -> Any:
    """Binary attribute values as base64, as they travel in Lambda's JSON event."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | set):
        return [_json_ready(v) for v in value]
    return value
