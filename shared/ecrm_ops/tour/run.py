"""`ecrm demo`: the platform on the local cloud, and the scripted tour of what it does.

The tour is one explicit list: each engine's steps (`STEPS` of its module in this package), in the
order the engines build on each other's data. A new engine adds its module and one entry here.
`ecrm demo --once` exits non-zero if any step failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from ecrm_ops.local_cloud import print_banner, run_until_interrupted, start_cloud
from ecrm_ops.tour import (
    analysis,
    broadcast,
    campaigns,
    collect,
    customers,
    personalization,
    platform,
    transactions,
)
from ecrm_ops.tour.context import Step, TourContext

TOUR: list[Step] = [
    *platform.STEPS,
    *customers.STEPS,
    *collect.STEPS,
    *analysis.STEPS,
    *personalization.STEPS,
    *broadcast.STEPS,
    *transactions.STEPS,
    *campaigns.STEPS,
]


def run_tour(ctx: TourContext, echo: Callable[[str], None] = print) -> int:
    failures = 0
    for number, step in enumerate(TOUR, start=1):
        started = time.monotonic()
        try:
            outcome = step.run(ctx)
            echo(f"  [ok]   {number}. {step.title}: {outcome} ({time.monotonic() - started:.1f}s)")
        except Exception as exc:
            failures += 1
            echo(f"  [FAIL] {number}. {step.title}: {exc}")
    echo(f"tour: {len(TOUR) - failures} passed, {failures} failed")
    return failures


def run_demo(*, once: bool, api_port: int = 0, state_dir: Path | None = None, faults: str = "") -> int:
    cloud = start_cloud(api_port=api_port, state_dir=state_dir, faults=faults)
    ctx = TourContext(cloud)
    if not once:
        print(f"A marketer's token (valid 1 hour):\n{ctx.token(group='marketer')}\n", flush=True)
        run_until_interrupted(cloud)
        return 0
    try:
        print_banner(cloud)
        print("The tour:", flush=True)
        failures = run_tour(ctx)
    finally:
        cloud.stop()
    return 1 if failures else 0
