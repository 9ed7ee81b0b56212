"""Reading what the bus delivered to a queue."""

from __future__ import annotations

from typing import Any


def drain(sqs_client: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every message now in the queue; moto delivers synchronously, so no long polling is needed.

    Received messages stay invisible for the queue's visibility timeout, so none is read twice.
    """
    messages: list[dict[str, Any]] = []
    while batch := sqs_client.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, AttributeNames=["All"]
    ).get("Messages", []):
        messages.extend(batch)
    return messages
