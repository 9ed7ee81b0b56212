"""Where a running local cloud can be found: `.local-cloud/state.json` (or `$ECRM_LOCAL_STATE_DIR`).

Kept free of CDK imports, so `ecrm local token` and friends start fast.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
STATE_DIR = Path(os.environ.get("ECRM_LOCAL_STATE_DIR") or REPO_ROOT / ".local-cloud")
STATE_FILE = STATE_DIR / "state.json"
STACK_NAME = "EcrmPlatform"


@dataclass(frozen=True)
class CloudState:
    """How to reach a running local cloud (written to `.local-cloud/state.json`)."""

    api_url: str
    endpoint_url: str
    region: str
    user_pool_id: str
    staff_client_id: str
    customer_client_id: str
    event_bus_name: str

    def save(self, path: Path | None = None) -> None:
        path = path or STATE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.__dict__, indent=2))

    @classmethod
    def load(cls, path: Path | None = None) -> CloudState:
        path = path or STATE_FILE
        return cls(**json.loads(path.read_text()))
