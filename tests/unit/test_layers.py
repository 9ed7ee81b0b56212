"""The common layer ships the versions the code is tested with, and only runtime code."""

from __future__ import annotations

import ast
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


# -- the runtime package holds runtime code only ---------------------------------------------------
SHARED = Path(__file__).resolve().parents[2] / "shared"
# What functions never import: the operator package (CLI, tour, demo data, analyst commands) and the CDK app.
NOT_RUNTIME = ("ecrm_ops", "infra")


def imports_outside_the_runtime(package: Path) -> list[str]:
    """Every import of `NOT_RUNTIME` anywhere in `package`, lazy imports inside functions included."""
    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found += [
                f"{path.relative_to(package.parent)}:{node.lineno} imports {name}"
                for name in names
                if name.split(".")[0] in NOT_RUNTIME
            ]
    return found


def test_the_runtime_package_never_imports_the_operator_package_or_infra() -> None:
    assert imports_outside_the_runtime(SHARED / "ecrm") == []


def test_an_import_of_the_operator_package_or_infra_is_found(tmp_path: Path) -> None:
    # Given a runtime package with a planted violation of each kind, one of them lazy
    planted = tmp_path / "ecrm" / "engine"
    planted.mkdir(parents=True)
    (planted / "service.py").write_text(
        "import json\nfrom ecrm_ops.tour.context import http\n\n\ndef run():\n    import infra.local.cloud\n"
    )
    # Then both are reported
    assert imports_outside_the_runtime(tmp_path / "ecrm") == [
        "ecrm/engine/service.py:2 imports ecrm_ops.tour.context",
        "ecrm/engine/service.py:6 imports infra.local.cloud",
    ]
