"""The whole API's OpenAPI document, generated from every engine's resolver (`make openapi`).

Every `functions/<engine>/api.py` is an engine's REST front; this imports each one, asks its resolver
for its document and merges them (`ecrm.core.openapi.merge_documents`). The result is committed as
`functions/platform/openapi.json`: it ships in the platform function's bundle, which serves it at
`GET /openapi.json` without importing four other engines at cold start, and it is what the console's
typed client and the fuzzers are built from. A unit test fails when the committed copy is stale.

    python -m functions.api_document            # rewrite the committed document
    python -m functions.api_document --check    # exit 1 when it is stale
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Any

from ecrm import __version__
from ecrm.core.openapi import merge_documents, render

FUNCTIONS_DIR = Path(__file__).resolve().parent
DOCUMENT = FUNCTIONS_DIR / "platform" / "openapi.json"
TITLE = "eCRM API"
DESCRIPTION = (
    "Every route of the eCRM REST API, generated from the engines' code. `x-ecrm-access` on each operation "
    "says who may call it: `public` (no token; `reason` says why that is safe), `customer` (a signed-in "
    "customer, on their own data: the customer id comes from the token, never from the path), or `staff` "
    "of the listed groups. Errors are RFC 9457 problem documents (`application/problem+json`)."
)
# The engines read their configuration at import; generating the document touches no AWS resource.
PLACEHOLDER_ENVIRONMENT = {
    "EVENT_BUS_NAME": "openapi",
    "PLATFORM_TABLE_NAME": "openapi",
    "CUSTOMERS_TABLE_NAME": "openapi",
    "COLLECT_TABLE_NAME": "openapi",
    "ANALYSIS_TABLE_NAME": "openapi",
    "PERSONALIZATION_TABLE_NAME": "openapi",
    "BROADCAST_TABLE_NAME": "openapi",
    "TRANSACTIONS_TABLE_NAME": "openapi",
    "CAMPAIGNS_TABLE_NAME": "openapi",
    "INSIGHTS_TABLE_NAME": "openapi",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def engines() -> list[str]:
    """Every engine with a REST front: a folder of `functions/` holding an `api.py`."""
    return sorted(path.parent.name for path in FUNCTIONS_DIR.glob("*/api.py"))


def build() -> dict[str, Any]:
    documents = {
        engine: importlib.import_module(f"functions.{engine}.api").app.openapi_document() for engine in engines()
    }
    return merge_documents(documents, title=TITLE, version=__version__, description=DESCRIPTION)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed document is stale")
    args = parser.parse_args(argv)
    for name, value in PLACEHOLDER_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    text = render(build())
    current = DOCUMENT.read_text(encoding="utf-8") if DOCUMENT.exists() else ""
    if args.check:
        if text != current:
            print(f"{DOCUMENT.relative_to(FUNCTIONS_DIR.parent)} is stale: run `make openapi`", file=sys.stderr)
            return 1
        return 0
    if text != current:
        DOCUMENT.write_text(text, encoding="utf-8")
        print(f"wrote {DOCUMENT.relative_to(FUNCTIONS_DIR.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
