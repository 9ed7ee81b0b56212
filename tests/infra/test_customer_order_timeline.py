"""The customer store's order timeline as deployed: one rule takes the transactions engine's order events to
a queue with a dead-letter queue (and the rule's own dead letters there too), drained by `on_order_event`."""

from __future__ import annotations

import pytest
from ecrm.customers.order_timeline import ORDER_EVENTS

from tests.infra.conftest import Synthesized, ref

pytestmark = pytest.mark.xdist_group("infra")


def test_the_order_events_rule_feeds_the_order_timeline_consumer_with_a_dead_letter_queue(
    synthesized: Synthesized,
) -> None:
    # Given the rules whose pattern is the transactions engine's order events, exactly what the timeline records
    rules = [
        rule["Properties"]
        for rule in synthesized.resources("AWS::Events::Rule").values()
        if rule["Properties"].get("EventPattern", {}).get("source") == ["ecrm.transactions"]
        and sorted(rule["Properties"]["EventPattern"].get("detail-type", [])) == sorted(ORDER_EVENTS)
        and "detail" not in rule["Properties"]["EventPattern"]
    ]
    queues = synthesized.resources("AWS::SQS::Queue")
    functions = synthesized.resources("AWS::Lambda::Function")
    mappings = synthesized.resources("AWS::Lambda::EventSourceMapping").values()
    drained_by = {
        ref(m["Properties"]["EventSourceArn"]): functions[ref(m["Properties"]["FunctionName"])]["Properties"]["Handler"]  # type: ignore[index]
        for m in mappings
        if ref(m["Properties"].get("EventSourceArn")) in queues
    }
    # Then one of them targets a queue drained by the order timeline's handler
    targets = [
        t
        for rule in rules
        for t in rule.get("Targets", [])
        if drained_by.get(ref(t["Arn"])) == "on_order_event.handler"
    ]
    assert len(targets) == 1, "no rule of the order events feeds on_order_event"
    target = targets[0]
    queue = queues[ref(target["Arn"])]["Properties"]  # type: ignore[index]
    # with the queue's dead-letter queue for what keeps failing, and the rule's undeliverable events there too
    dead_letters = ref(queue["RedrivePolicy"]["deadLetterTargetArn"])
    assert dead_letters in queues
    assert ref(target["DeadLetterConfig"]["Arn"]) == dead_letters
