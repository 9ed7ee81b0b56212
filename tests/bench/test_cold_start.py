"""Cold start: the import time of every Lambda handler module, in a fresh interpreter each time.

Reference: `import boto3` in the same kind of fresh interpreter, which every Python Lambda pays
for anyway. A handler's figure includes Powertools, pydantic, its engine and its config.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench.harness import measure, report

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS = REPO / "functions"
HANDLERS = sorted(p for p in FUNCTIONS.glob("*/*.py") if p.name != "__init__.py")
ENV = {
    "EVENT_BUS_NAME": "ecrm",
    "PLATFORM_TABLE_NAME": "ecrm-platform",
    "CUSTOMERS_TABLE_NAME": "ecrm-customers",
    "IMPORT_BUCKET_NAME": "ecrm-imports",
    "COLLECT_TABLE_NAME": "ecrm-collect",
    "ANALYSIS_TABLE_NAME": "ecrm-analysis",
    "PERSONALIZATION_TABLE_NAME": "ecrm-personalization",
    "LAKE_BUCKET_NAME": "ecrm-lake",
    "LAKE_DATABASE": "ecrm_lake",
    "ATHENA_WORKGROUP": "ecrm",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "bench",
    "PATH": os.environ.get("PATH", ""),
}
PROBE = (
    "import sys, time; sys.path[:0] = [sys.argv[1], sys.argv[2]]; t = time.perf_counter(); "
    "__import__(sys.argv[3]); print((time.perf_counter() - t) * 1000)"
)


def import_ms(code_dir: Path, module: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(code_dir), str(REPO / "shared"), module],
        capture_output=True,
        text=True,
        check=True,
        env=ENV,
        cwd=code_dir,
    )
    return float(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("repeat", [7])
def test_handler_import_time(repeat: int) -> None:
    reference = measure("import boto3 (reference)", lambda: import_ms(REPO, "boto3"), repeat=repeat)
    rows = [
        measure(f"{p.parent.name}/{p.stem}", lambda p=p: import_ms(p.parent, p.stem), repeat=repeat) for p in HANDLERS
    ]
    report("Cold start: handler module import time (fresh interpreter per sample)", rows, reference)
    summary = {r.name: round(r.median, 1) for r in rows} | {"reference": round(reference.median, 1)}
    (REPO / ".build").mkdir(exist_ok=True)
    (REPO / ".build" / "bench-cold-start.json").write_text(json.dumps(summary, indent=2))
