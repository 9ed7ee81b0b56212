"""The loyalty ledger's consumer (`functions/transactions/on_order_event.py`) as deployed: its rule brings the
customer store's merges, so a merged customer's account moves to the survivor's, and every engine that keeps
the loyalty standing routes the merge's `PointsMerged` (it carries the survivor's new standing)."""

from __future__ import annotations

import pytest
from ecrm.transactions.models import LOYALTY_EVENTS

from tests.infra.conftest import Synthesized, ref

pytestmark = pytest.mark.xdist_group("infra")


def test_the_loyalty_consumer_receives_the_customer_stores_merges(synthesized: Synthesized) -> None:
    functions = synthesized.resources("AWS::Lambda::Function")
    queues = synthesized.resources("AWS::SQS::Queue")
    loyalty_queues = {
        ref(m["Properties"]["EventSourceArn"])
        for m in synthesized.resources("AWS::Lambda::EventSourceMapping").values()
        if ref(m["Properties"].get("EventSourceArn")) in queues
        and "transactions"
        in str(functions[ref(m["Properties"]["FunctionName"])]["Properties"].get("Description", "")).lower()  # type: ignore[index]
        and functions[ref(m["Properties"]["FunctionName"])]["Properties"]["Handler"] == "on_order_event.handler"  # type: ignore[index]
    }
    assert len(loyalty_queues) == 1
    patterns = [
        rule["Properties"]["EventPattern"]
        for rule in synthesized.resources("AWS::Events::Rule").values()
        if any(ref(t["Arn"]) in loyalty_queues for t in rule["Properties"].get("Targets", []))
    ]
    assert any(
        "ecrm.customers" in p.get("source", []) and "CustomersMerged" in p.get("detail-type", []) for p in patterns
    )


def test_every_rule_that_routes_loyalty_standings_routes_the_merge_too(synthesized: Synthesized) -> None:
    standing_events = {event.detail_type for event in LOYALTY_EVENTS}
    routed = [
        set(rule["Properties"]["EventPattern"].get("detail-type", []))
        for rule in synthesized.resources("AWS::Events::Rule").values()
        if "PointsReversed" in rule["Properties"].get("EventPattern", {}).get("detail-type", [])
    ]
    assert len(routed) >= 3, "the customer store, segmentation and personalization each keep the standing"
    assert all(standing_events <= detail_types for detail_types in routed)
