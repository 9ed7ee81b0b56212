"""Step Functions state machines and schedules, executed by the local cloud."""

from __future__ import annotations

import json

import pytest
from ecrm_ops.tour.context import TourContext, wait_for
from ecrm_ops.tour.run import run_tour

from infra.local.cloud import LocalCloud


def test_the_schedule_starts_the_self_check_which_succeeds(cloud: LocalCloud) -> None:
    sfn = cloud.client("stepfunctions")
    # When the self-check schedule fires on the local clock
    (name,) = [n for n in cloud.scheduler.schedules if "SelfCheck" in n]
    (execution_arn,) = cloud.scheduler.fire(name)
    # Then the state machine sends a ping, waits, retries until it arrived, and succeeds
    described = wait_for(
        lambda: (d := sfn.describe_execution(executionArn=execution_arn))["status"] != "RUNNING" and d,
        timeout=60,
        what="the execution",
    )
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert json.loads(described["output"])["ping_id"].startswith("png_")


@pytest.mark.tour  # `make test-tour`: `make test` leaves the tour to `ecrm demo --once`, which runs it whole
@pytest.mark.timeout(1200)  # the whole tour, every engine, on one local cloud
def test_the_demo_tour_passes(tour: TourContext) -> None:
    lines: list[str] = []
    assert run_tour(tour, echo=lines.append) == 0, "\n".join(lines)
