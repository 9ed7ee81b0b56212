"""Cold start: the import time of every Lambda handler module, in a fresh interpreter each time.

Reference: `import boto3` in the same kind of fresh interpreter, which every Python Lambda pays
for anyway. A handler's figure includes Powertools, pydantic, its engine and its config, imported
the way the Lambda runtime imports it (its own directory and the layer's package on `sys.path`,
then `import <module>`).

The machine is shared, so the load moves while the benchmark runs. Samples are taken in rounds
(the reference, then every handler once), so the reference and each handler see the same load,
and a handler's figure is its median over the reference's median in the same run. The API
handlers (every `api.py`: the only modules behind API Gateway routes) are marked against the
goal of x1.5; the benchmark prints, it never asserts on time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench.harness import Measurement
from tests.handler_environment import HANDLER_ENVIRONMENT

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS = REPO / "functions"
HANDLERS = sorted(p for p in FUNCTIONS.glob("*/*.py") if p.name != "__init__.py")
API_GOAL = 1.5  # an API handler imports within this multiple of a bare `import boto3`
ENV = {
    **HANDLER_ENVIRONMENT,
    "POWERTOOLS_SERVICE_NAME": "bench",
    "PATH": os.environ.get("PATH", ""),
}
PROBE = (
    "import sys, time; sys.path[:0] = [sys.argv[1], sys.argv[2]]; t = time.perf_counter(); "
    "__import__(sys.argv[3]); print((time.perf_counter() - t) * 1000)"
)


# What any API handler imports and builds at cold start whatever its engine does: boto3, Powertools' REST
# resolver with validation, Logger and Metrics, and pydantic validating one model (the function's settings).
# Not a handler: printed so that a handler's distance to the goal reads against what no engine can avoid.
API_FLOOR = (
    "import boto3\n"
    "from aws_lambda_powertools import Logger, Metrics\n"
    "from aws_lambda_powertools.event_handler import APIGatewayRestResolver\n"
    "from pydantic import BaseModel\n"
    "class Settings(BaseModel):\n"
    "    aws_region: str = 'us-east-1'\n"
    "Settings.model_validate({})\n"
    "Logger(service='bench'); Metrics(namespace='bench'); APIGatewayRestResolver(enable_validation=True)\n"
)
FLOOR_PROBE = "import sys, time; t = time.perf_counter(); exec(sys.argv[1]); print((time.perf_counter() - t) * 1000)"


def _run(args: list[str], cwd: Path) -> float:
    out = subprocess.run([sys.executable, "-c", *args], capture_output=True, text=True, check=True, env=ENV, cwd=cwd)
    return float(out.stdout.strip().splitlines()[-1])


def import_ms(code_dir: Path, module: str) -> float:
    return _run([PROBE, str(code_dir), str(REPO / "shared"), module], code_dir)


def api_floor_ms() -> float:
    return _run([FLOOR_PROBE, API_FLOOR], REPO)


def is_api_handler(handler: Path) -> bool:
    """`api.py` is the module every engine's API function runs (infra/constructs/api_function.py)."""
    return handler.stem == "api"


def cold_start_table(reference: Measurement, floor: Measurement, rows: list[tuple[Measurement, bool]]) -> str:
    width = max(len(r.name) for r in [reference, floor, *(r for r, _ in rows)]) + 2
    lines = [
        f"\nCold start: handler module import time (fresh interpreter per sample, {len(reference.samples)} rounds)",
        f"  {'':{width}} {'median':>10} {'min':>10} {'max':>10}   {'ratio':>6}   goal",
        f"  {reference.name:{width}} {reference.median:>8.1f}ms {min(reference.samples):>8.1f}ms "
        f"{max(reference.samples):>8.1f}ms   {'x1.00':>6}   reference",
        f"  {floor.name:{width}} {floor.median:>8.1f}ms {min(floor.samples):>8.1f}ms "
        f"{max(floor.samples):>8.1f}ms   {'x' + format(floor.median / reference.median, '.2f'):>6}   "
        "what every API handler imports, whatever its engine",
    ]
    over = []
    for row, api in rows:
        ratio = row.median / reference.median
        goal = ""
        if api:
            goal = f"API <= x{API_GOAL}: " + ("ok" if ratio <= API_GOAL else "OVER")
            if ratio > API_GOAL:
                over.append(row.name)
        lines.append(
            f"  {row.name:{width}} {row.median:>8.1f}ms {min(row.samples):>8.1f}ms {max(row.samples):>8.1f}ms   "
            f"{'x' + format(ratio, '.2f'):>6}   {goal}"
        )
    apis = sum(api for _, api in rows)
    lines.append(
        f"  API handlers within x{API_GOAL}: {apis - len(over)} of {apis}"
        + (f" (over: {', '.join(over)})" if over else "")
    )
    return "\n".join(lines)


@pytest.mark.parametrize("rounds", [7])
def test_handler_import_time(rounds: int) -> None:
    reference: list[float] = []
    floor: list[float] = []
    samples: dict[Path, list[float]] = {p: [] for p in HANDLERS}
    for _ in range(rounds):
        reference.append(import_ms(REPO, "boto3"))
        floor.append(api_floor_ms())
        for p in HANDLERS:
            samples[p].append(import_ms(p.parent, p.stem))
    ref = Measurement("import boto3 (reference)", reference)
    api_floor = Measurement("API floor (boto3, Powertools, pydantic)", floor)
    rows = [(Measurement(f"{p.parent.name}/{p.stem}", samples[p]), is_api_handler(p)) for p in HANDLERS]
    print(cold_start_table(ref, api_floor, rows))
    summary = {r.name: round(r.median, 1) for r, _ in rows} | {"reference": round(ref.median, 1)}
    summary |= {"api floor": round(api_floor.median, 1)}
    summary |= {f"{r.name} ratio": round(r.median / ref.median, 2) for r, _ in rows}
    (REPO / ".build").mkdir(exist_ok=True)
    (REPO / ".build" / "bench-cold-start.json").write_text(json.dumps(summary, indent=2))
