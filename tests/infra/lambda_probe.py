"""Import one Lambda handler module the way the Lambda runtime does, optionally invoke it.

Run by test_bundling.py as `python -I -S -B lambda_probe.py <spec.json>`: `-I` ignores PYTHON*
variables and the user site, `-S` skips site-packages (so neither the repository nor the venv's
editable `ecrm` is importable). The spec puts exactly the runtime's search path in front of the
standard library: the function's code (/var/task), its layers (/opt/python), then the runtime's
own packages (boto3 and friends, /var/runtime). Only the standard library is imported here.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

OBSERVED = ("ecrm", "pydantic", "pydantic_core", "aws_lambda_powertools", "boto3")


class Context:
    function_name = "ecrm-probe"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ecrm-probe"
    aws_request_id = "00000000-0000-4000-8000-000000000001"
    log_group_name = "/aws/lambda/ecrm-probe"
    log_stream_name = "2026/11/23/[$LATEST]00000000000000000000000000000001"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def main(spec_file: str) -> None:
    spec = json.loads(Path(spec_file).read_text(encoding="utf-8"))
    # Lambda extracts every layer into /opt/python; here each layer is its own directory, in layer order.
    sys.path[:0] = [spec["task_root"], *spec["layers"], spec["runtime"]]
    result: dict[str, Any] = {"sys_path": list(sys.path), "site_imported": "site" in sys.modules}
    try:
        module = importlib.import_module(spec["module"])
        result["module_file"] = module.__file__
        result["origins"] = {name: getattr(sys.modules.get(name), "__file__", None) for name in OBSERVED}
        if spec.get("event"):
            event = json.loads(Path(spec["event"]).read_text(encoding="utf-8"))
            result["response"] = module.handler(event, Context())
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    Path(spec["result"]).write_text(json.dumps(result, default=str), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1])
