"""One embedded local cloud per xdist worker running e2e tests (two groups: `e2e` and `e2e-tour`)."""

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


# The tour, the README's commands and the CLI's own clouds run in a second group: on two xdist workers each
# group gets its own local cloud, so the suite's waits overlap instead of adding up (one group took 22 minutes).
SECOND_GROUP = {"test_workflows.py", "test_readme_commands.py", "test_cli.py"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = str(item.fspath).replace(os.sep, "/")
        if "tests/e2e/" in path:
            item.add_marker(pytest.mark.e2e)
            group = "e2e-tour" if path.rsplit("/", 1)[-1] in SECOND_GROUP else "e2e"
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    # Given the platform synthesized and running on 127.0.0.1
    local = LocalCloud(state_dir=tmp_path_factory.mktemp("local-cloud"))
    local.start()
    yield local
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
