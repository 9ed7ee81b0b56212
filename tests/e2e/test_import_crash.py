"""An import whose chunk worker dies mid-chunk loses nothing, creates nobody twice, and reports exactly.

The local cloud's fault plan kills the import task's sandbox after some AWS calls of its first chunk
(Lambda reports `Runtime.ExitError`); Step Functions retries the chunk as the state machine says, and
the retry resumes after the last row the killed attempt applied (`ChunkProgress`, written in the same
transaction as each row's change).
"""

from __future__ import annotations

import csv
import io
import json
import urllib.request
from pathlib import Path

from ecrm_ops.customers.importer import run_import
from ecrm_ops.tour.context import TourContext

from infra.local.cloud import LocalCloud

PEOPLE = 150
BAD_ROWS = {20: "not-an-email", 90: "also@not@valid", 140: ""}  # by row number, as the report numbers them


def people_file(folder: Path) -> tuple[Path, Path]:
    rows = [["email", "first_name"]]
    person = 0
    for row in range(1, PEOPLE + len(BAD_ROWS) + 1):  # the first row under the header is row 1
        if row in BAD_ROWS:
            rows.append([BAD_ROWS[row], "Bad"])
        else:
            person += 1
            rows.append([f"crash.{person:04d}@import-crash.example.com", f"Person {person}"])
    data = folder / "crash.csv"
    with data.open("w", newline="") as sink:
        csv.writer(sink).writerows(rows)
    mapping = folder / "crash.mapping.json"
    mapping.write_text(json.dumps({"email": "email", "first_name": "first_name"}))
    return data, mapping


def test_a_chunk_worker_killed_mid_chunk_leaves_an_exact_report(
    cloud: LocalCloud, tour: TourContext, tmp_path: Path
) -> None:
    admin = tour.token(group="admin")
    data, mapping = people_file(tmp_path)
    # Given the import task's second invocation (the first chunk; the first prepares) killed after 40 AWS calls
    earlier = len(cloud.faults.hits("lambda"))  # the cloud's fault log keeps earlier tests' faults
    cloud.faults.load("lambda:CustomersImportTask=crash@after:40#2")
    try:
        # When the file is imported
        status = run_import(
            str(data), source="crash-test", mapping_file=str(mapping), api_url=tour.api, token=admin, progress=False
        ).status
    finally:
        crashes = cloud.faults.hits("lambda")[earlier:]
        cloud.faults.clear()

    # Then the worker was killed once, mid-chunk, and the import still finished
    assert [c.fault for c in crashes] == ["crash@after:40"]
    assert status["status"] == "completed"
    # And the report is exact: everyone created once, nothing counted as unchanged, every bad row reported
    assert status["total_rows"] == PEOPLE + len(BAD_ROWS)
    assert (status["created_customers"], status["imported_rows"], status["unchanged_rows"]) == (PEOPLE, PEOPLE, 0)
    assert status["error_rows"] == len(BAD_ROWS)
    with urllib.request.urlopen(status["error_report_url"]) as response:
        report = list(csv.DictReader(io.StringIO(response.read().decode())))
    assert sorted(int(r["row"]) for r in report) == sorted(BAD_ROWS)
    # And each person is one customer
    customer_ids = set()
    for person in range(1, PEOPLE + 1):
        found = tour.call("GET", f"/customers?email=crash.{person:04d}@import-crash.example.com", token=admin)
        assert found.status == 200, found.body
        customer_ids.add(found.body["customer_id"])
    assert len(customer_ids) == PEOPLE
