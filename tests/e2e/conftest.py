"""One embedded local cloud for the whole e2e suite (on one xdist worker, `xdist_group("e2e")`)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from ecrm_ops.tour.context import TourContext

from infra.local.cloud import LocalCloud

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
# The tour's multi-source import at a size that keeps the suite quick (`ecrm demo` uses 600).
os.environ.setdefault("ECRM_DEMO_PEOPLE", "200")
os.environ.setdefault("ECRM_DEMO_VISITORS", "40")
NIGHTLY_JOBS = ("AnalysisModelSchedule", "PersonalizationTrainingSchedule")


def _in_e2e(item: pytest.Item) -> bool:
    return "tests/e2e/" in str(item.fspath).replace(os.sep, "/")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the xdist_group marks into the node ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _in_e2e(item):
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.xdist_group("e2e"))


@pytest.fixture(autouse=True)
def _in_the_e2e_group(request: pytest.FixtureRequest) -> None:
    """Under `--dist loadgroup`, every e2e test is in the group, or each worker would start its own local cloud."""
    if "PYTEST_XDIST_WORKER" in os.environ and request.config.getvalue("loadgroup"):
        assert request.node.nodeid.endswith("@e2e"), f"{request.node.nodeid} runs outside the e2e xdist group"


# The running e2e cloud, stopped as soon as this worker's last e2e test is done (`pytest_runtest_teardown`).
_RUNNING: list[LocalCloud] = []


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """The e2e group runs as one block on its worker, which then takes other tests: the cloud must not outlive the
    block. Its moto server shares the process's moto backends and its clock ticks days ahead of real time, so a
    later in-process test would meet its schedules firing and its time (an EventBridge Scheduler test saw its
    schedule deleted as past its end date by the e2e cloud's scheduler)."""
    if _RUNNING and _in_e2e(item) and (nextitem is None or not _in_e2e(nextitem)):
        _RUNNING.pop().stop()


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    # Given the platform synthesized and running on 127.0.0.1
    local = LocalCloud(state_dir=tmp_path_factory.mktemp("local-cloud"))
    local.start()
    # The nightly model and training jobs run when a test invokes them (test_analysis_orders.py,
    # test_personalization.py): on their schedules, each test moving the clock days ahead retrained every model
    # in the background (twice for a two-day wait), and fresh scores could change traits other tests watch.
    # Turned off through EventBridge, as an operator would; their firing is the scheduler's, tested apart.
    events = local.client("events")
    nightly = [name for name in local.scheduler.schedules if any(job in name for job in NIGHTLY_JOBS)]
    assert len(nightly) == len(NIGHTLY_JOBS), f"the nightly jobs' rules are not {NIGHTLY_JOBS}: {nightly}"
    for name in nightly:
        events.disable_rule(Name=name)
    _RUNNING.append(local)
    yield local
    if local in _RUNNING:  # not stopped at the end of the block (an e2e test run alone, or a failed start)
        _RUNNING.remove(local)
        local.stop()


@pytest.fixture(scope="session")
def tour(cloud: LocalCloud) -> TourContext:
    return TourContext(cloud)


@pytest.fixture(scope="session")
def staff_token(tour: TourContext) -> str:
    return tour.token(group="marketer")


@pytest.fixture(scope="session")
def customer_token(tour: TourContext) -> str:
    return tour.token(customer_id="cus_e2e_0001")
