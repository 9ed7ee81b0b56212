"""Counts the message events of the table's stream once per tumbling window and writes each window's counts with
their `MessageOutcomesCounted` events for the relay; writes each message event as a row of the lake's
`message_outcomes` table (`ecrm.broadcast.outcome_counts`, ADR 12)."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.broadcast.outcome_counts import OutcomeCounter, OutcomeCountStore
from ecrm.core import aws
from ecrm.core.clock import SystemClock
from ecrm.core.config import FunctionConfig, load_config
from ecrm.core.lake import FirehoseLakeWriter
from ecrm.core.observability import Observability


class CountingConfig(FunctionConfig):
    broadcast_table_name: str
    # The Firehose stream into the lake's `message_outcomes` table ("": no lake rows).
    lake_message_outcomes_stream_name: str = ""


config = load_config(CountingConfig)
obs = Observability(config)


@cache
def default_counter() -> OutcomeCounter:
    stream = config.lake_message_outcomes_stream_name
    lake: FirehoseLakeWriter[dict[str, Any]] | None = None
    if stream:
        lake = FirehoseLakeWriter(aws.client("firehose"), stream, lambda row: row)
    store = OutcomeCountStore(aws.client("dynamodb"), config.broadcast_table_name)
    return OutcomeCounter(store, SystemClock(), lake)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: OutcomeCounter | None = None) -> dict[str, Any]:
    return (injected or default_counter()).handle(event)
