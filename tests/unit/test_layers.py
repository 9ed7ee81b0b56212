"""The common layer ships the versions the code is tested with."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest

LAYERS = Path(__file__).resolve().parents[2] / "layers"


def pins(layer: str) -> dict[str, str]:
    found = {}
    for line in (LAYERS / layer / "requirements.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s#]+)", line.strip())
        if match:
            found[match.group(1)] = match.group(2)
    return found


@pytest.mark.parametrize(("package", "version"), sorted(pins("common").items()))
def test_common_layer_pins_equal_the_tested_versions(package: str, version: str) -> None:
    assert importlib.metadata.version(package) == version, f"layers/common pins {package}=={version}; uv.lock differs"


def test_every_runtime_dependency_of_the_package_is_in_the_common_layer() -> None:
    requires = importlib.metadata.requires("ecrm") or []
    runtime = {re.split(r"[<>=;\[ ]", r, maxsplit=1)[0].lower() for r in requires if "extra ==" not in r}
    provided_by_lambda = {"boto3"}
    assert runtime - provided_by_lambda <= {p.lower() for p in pins("common")}
