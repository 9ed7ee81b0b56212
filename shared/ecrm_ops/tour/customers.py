"""The tour's customer store steps: a multi-source import resolved to people, `/me` and the 360 view, GDPR."""

from __future__ import annotations

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ecrm_ops.tour.context import Step, TourContext, expect, wait_for

DEMO_PEOPLE = int(os.environ.get("ECRM_DEMO_PEOPLE", "600"))


def _multi_source_import(ctx: TourContext) -> str:
    from ecrm_ops.customers.demo_data import generate, write
    from ecrm_ops.customers.importer import run_import

    dataset = generate(people=DEMO_PEOPLE, seed=7)
    folder = Path(tempfile.mkdtemp(prefix="ecrm-demo-"))
    files = write(dataset, folder)
    token = ctx.token(group="admin")
    totals = {"rows": 0, "errors": 0, "created": 0, "merged": 0}
    per_source = []

    def one_source(source: str, path: Path) -> Any:
        return run_import(
            str(path),
            source=source,
            mapping_file=str(path.with_suffix(".mapping.json")),
            api_url=ctx.api,
            token=token,
            progress=False,
        )

    # The sources deliver their files independently, as they would: four imports at once.
    with ThreadPoolExecutor(max_workers=len(files)) as pool:
        outcomes = {source: pool.submit(one_source, source, path) for source, path in files.items()}
    for source, future in outcomes.items():
        outcome = future.result()
        status = outcome.status
        totals["rows"] += status["total_rows"] or 0
        totals["errors"] += status["error_rows"]
        totals["created"] += status["created_customers"]
        totals["merged"] += status["merged_customers"]
        per_source.append(f"{source} {status['total_rows']} rows/{outcome.seconds:.0f}s")
    customers = totals["created"] - totals["merged"]
    ctx.facts["demo_dataset"] = dataset
    again = run_import(
        str(files["web"]),
        source="web",
        mapping_file=str(files["web"].with_suffix(".mapping.json")),
        api_url=ctx.api,
        token=token,
        progress=False,
    )
    if again.status["status"] != "duplicate":
        raise AssertionError(f"re-importing the same file should change nothing: {again.status}")
    if customers != dataset.expected_customers:
        raise AssertionError(f"{customers} customers, the data set holds {dataset.expected_customers} people")
    return (
        f"{totals['rows']} records ({', '.join(per_source)}) -> {customers} customers "
        f"({totals['merged']} merges, {totals['errors']} bad rows reported); ground truth "
        f"{dataset.expected_customers} people; re-import of web.csv: duplicate, nothing changed"
    )


def _customer_views(ctx: TourContext) -> str:
    staff = ctx.token(group="marketer")
    a = expect(
        ctx.call(
            "POST",
            "/customers",
            token=staff,
            body={
                "source": "web",
                "identities": [{"type": "email", "value": "demo.customer.a@example.com"}],
                "attributes": {"first_name": "Avery"},
            },
        ),
        201,
        "POST /customers",
    ).body["customer_id"]
    b = expect(
        ctx.call(
            "POST",
            "/customers",
            token=staff,
            body={"source": "web", "identities": [{"type": "email", "value": "demo.customer.b@example.com"}]},
        ),
        201,
        "POST /customers",
    ).body["customer_id"]
    mine = ctx.token(customer_id=a)
    me = expect(ctx.call("GET", "/me", token=mine), 200, "GET /me").body
    if me["customer_id"] != a:
        raise AssertionError("GET /me returned another customer")
    expect(ctx.call("GET", f"/customers/{b}", token=mine), 403, "a customer reading another customer")
    expect(
        ctx.call(
            "PUT", "/me/consents/email/marketing", token=mine, body={"state": "granted", "notice_version": "2026-11"}
        ),
        200,
        "PUT /me/consents",
    )
    view = expect(ctx.call("GET", f"/customers/{a}", token=staff), 200, "GET /customers/{id}").body
    return (
        f"/me -> {a}; /customers/{{other}} with a customer token -> 403; staff 360 view has "
        f"{len(view['identities'])} identity, {len(view['consents'])} consent with proof"
    )


def _gdpr(ctx: TourContext) -> str:
    admin = ctx.token(group="admin")
    created = expect(
        ctx.call(
            "POST",
            "/customers",
            token=admin,
            body={
                "source": "callcenter",
                "identities": [
                    {"type": "email", "value": "forget.me@example.com"},
                    {"type": "phone", "value": "+14155552671"},
                ],
                "attributes": {"first_name": "Robin"},
            },
        ),
        201,
        "POST /customers",
    ).body["customer_id"]
    expect(
        ctx.call(
            "POST",
            f"/customers/{created}/interactions",
            token=admin,
            body={"type": "call", "occurred_at": "2026-11-20T09:30:00Z", "source": "callcenter"},
        ),
        201,
        "POST interaction",
    )
    export = expect(ctx.call("GET", f"/customers/{created}/export", token=admin), 200, "GET export").body
    accepted = expect(ctx.call("DELETE", f"/customers/{created}", token=admin), 202, "DELETE /customers/{id}").body
    done = wait_for(
        lambda: (
            (e := ctx.call("GET", f"/erasures/{accepted['request_id']}", token=admin)).body["status"] == "completed"
            and e.body
        ),
        # Every engine acknowledges; after the import the lake holds thousands of objects its erasers rewrite.
        timeout=180,
        what="the erasure to complete",
    )
    expect(ctx.call("GET", f"/customers/{created}", token=admin), 404, "the erased customer")
    expect(ctx.call("GET", "/customers?email=forget.me@example.com", token=admin), 404, "lookup of an erased email")
    return (
        f"export held {len(export['timeline'])} interaction(s) and {len(export['customer']['identities'])} "
        f"identities; erasure {accepted['request_id']} acknowledged by {', '.join(done['acknowledged'])}; "
        f"the id and the email no longer resolve"
    )


STEPS: list[Step] = [
    Step("customers from four sources resolve to one profile per person", _multi_source_import),
    Step("a customer sees only themselves; staff see the 360 view", _customer_views),
    Step("GDPR: export, then erasure acknowledged by every engine", _gdpr),
]
