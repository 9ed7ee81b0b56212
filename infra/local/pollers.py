"""Event source mappings, run locally: receive a batch, invoke the handler, settle the batch.

SQS queues (`QueuePoller`) and DynamoDB streams (`infra.local.stream_poller.StreamPoller`) are polled; `poller_for`
picks the one a mapping's source needs.

As the Lambda service does: a batch that fails as a whole stays in the queue; with
`ReportBatchItemFailures` only the records named in `batchItemFailures` stay, the rest are deleted.
A record left in the queue is received again until the queue's `maxReceiveCount`, after which SQS
(moto) moves it to the dead-letter queue. A record whose visibility the function changed itself
(`ChangeMessageVisibility`: a sender's backoff, a claim's lease waited out) comes back when the
function said, as in AWS, where the Lambda service leaves a failed record's visibility alone. One
deliberate difference: any other failed record becomes visible again after `retry_delay` seconds
instead of the queue's visibility timeout, so that retries and dead-lettering take seconds locally,
not minutes.

Queues are long-polled for 20 seconds, as Lambda's pollers do: moto answers a waiting receive as
soon as a message arrives, and an idle queue costs one request per poller every 20 seconds instead
of one a second (each request costs the shared moto server some milliseconds of its GIL).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from infra.local import sqs_clock
from infra.local.in_process_clients import visibility_deadlines
from infra.local.runtime import FunctionRuntime, InvocationError
from infra.local.stream_poller import LONG_POLL_SECONDS, StreamPoller


class QueuePoller:
    def __init__(
        self,
        mapping: dict[str, Any],
        *,
        sqs: Any,
        runtime: FunctionRuntime,
        region: str,
        retry_delay: int = 1,
        concurrency: int = 3,
        on_error: Callable[[str, Exception], None] | None = None,
    ) -> None:
        self.mapping = mapping
        self.sqs = sqs
        self.runtime = runtime
        self.region = region
        self.retry_delay = retry_delay
        self.on_error = on_error
        self.queue_arn = self.source_arn = mapping["source_arn"]
        queue_name = self.queue_arn.rsplit(":", 1)[1]
        self.queue_url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        self.function = mapping["function"]
        self.batches = 0
        self._stop = threading.Event()
        # Lambda polls a queue with several pollers and runs batches concurrently; so do we.
        self._threads = [
            threading.Thread(target=self._loop, daemon=True, name=f"poll-{queue_name}-{n}") for n in range(concurrency)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    @property
    def alive(self) -> bool:
        return all(t.is_alive() for t in self._threads)

    def signal_stop(self) -> None:
        """Stop polling: no new receive starts, and what a long poll still returns is given back."""
        self._stop.set()

    def stop(self, timeout: float = 5) -> None:
        """Stop polling; a thread still in a long poll ends when it returns (threads are daemons)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once(wait_seconds=LONG_POLL_SECONDS)
            except Exception as exc:  # keep polling: the local cloud must survive a bad batch
                if self.on_error and not self._stop.is_set():
                    self.on_error(self.function, exc)
                self._stop.wait(1)

    def poll_once(self, wait_seconds: int = 0) -> int:
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(10, self.mapping["batch_size"]),
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        if self._stop.is_set():  # stopped during the long poll: leave the messages to the next consumer
            for message in messages:
                self.sqs.change_message_visibility(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
            return 0
        self.batches += 1
        handles = [m["ReceiptHandle"] for m in messages]
        received = visibility_deadlines(self.queue_url, self.region, handles)
        event = {"Records": [self._record(m) for m in messages]}
        with sqs_clock.in_flight(handles):  # a clock moved meanwhile does not hand the batch to another poller
            self._invoke_and_settle(messages, event, handles, received)
        return len(messages)

    def _invoke_and_settle(
        self, messages: list[dict[str, Any]], event: dict[str, Any], handles: list[str], received: dict[str, float]
    ) -> None:
        failed_ids: set[str]
        try:
            response = self.runtime.invoke(self.function, event)
            failed_ids = self._failed_ids(response, messages)
        except InvocationError as exc:
            failed_ids = {m["MessageId"] for m in messages}
            if self.on_error:
                self.on_error(self.function, exc)
        done = [m for m in messages if m["MessageId"] not in failed_ids]
        for start in range(0, len(done), 10):
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])
                ],
            )
        now = visibility_deadlines(self.queue_url, self.region, handles) if failed_ids else {}
        for message in messages:
            handle = message["ReceiptHandle"]
            if handle in received and now.get(handle, received[handle]) != received[handle]:
                continue  # the function set when the record comes back (its backoff): as Lambda, leave it
            if message["MessageId"] in failed_ids:
                try:
                    self.sqs.change_message_visibility(
                        QueueUrl=self.queue_url,
                        ReceiptHandle=message["ReceiptHandle"],
                        VisibilityTimeout=self.retry_delay,
                    )
                except Exception as exc:  # e.g. a handle already deleted: the batch's other failures still retry soon
                    if self.on_error:
                        self.on_error(self.function, exc)

    def _failed_ids(self, response: Any, messages: list[dict[str, Any]]) -> set[str]:
        if not self.mapping["report_batch_item_failures"]:
            return set()
        failures = (response or {}).get("batchItemFailures", []) if isinstance(response, dict) else []
        known = {m["MessageId"] for m in messages}
        ids = {f.get("itemIdentifier") for f in failures}
        if ids - known:  # Lambda treats an unknown or empty identifier as a failure of the whole batch
            return known
        return {i for i in ids if i}

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        body = message["Body"]
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": body,
            "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),  # noqa: S324
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": self.region,
        }


def poller_for(
    mapping: dict[str, Any],
    *,
    sqs: Any,
    streams: Any,
    runtime: FunctionRuntime,
    region: str,
    retry_delay: int = 1,
    on_error: Callable[[str, Exception], None] | None = None,
    now: Callable[[], datetime] | None = None,
) -> QueuePoller | StreamPoller:
    """The poller of an event source mapping: a queue's or a DynamoDB stream's (`now`, the local
    clock, times a stream's tumbling windows; queues have none)."""
    if ":dynamodb:" in mapping["source_arn"] and "/stream/" in mapping["source_arn"]:
        return StreamPoller(
            mapping,
            streams=streams,
            sqs=sqs,
            runtime=runtime,
            region=region,
            retry_delay=retry_delay,
            on_error=on_error,
            now=now,
        )
    return QueuePoller(mapping, sqs=sqs, runtime=runtime, region=region, retry_delay=retry_delay, on_error=on_error)


__all__ = ["QueuePoller", "StreamPoller", "poller_for"]
