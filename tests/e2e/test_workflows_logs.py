"""After the e2e suite, no log line of any function holds an email address or a phone number.

Logs are kept where an erasure cannot reach them, so they must never hold personal data. This runs
after the other e2e files but the API contract's (pytest collects the e2e files in name order, on one
shared local cloud) and reads what every function wrote for them. When the demo tour ran first
(`make test-tour`), every email of its generated data sets is looked for too, whatever its spelling.
"""

from __future__ import annotations

import re
from pathlib import Path

from ecrm_ops.tour.context import TourContext

EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
E164 = re.compile(r"\+[1-9]\d{7,14}\b")
# Emails and phones the tour's own steps send (the generated data sets add the rest, read from their files).
TOUR_LITERALS = ("demo.customer.a@example.com", "demo.customer.b@example.com", "forget.me@example.com", "+14155552671")


def used_by_the_tour(tour: TourContext) -> set[str]:
    if "demo_dataset" not in tour.facts:  # the tour did not run (`make test` leaves it to `ecrm demo --once`)
        return set()
    dataset = tour.facts["demo_dataset"]
    values = set(TOUR_LITERALS)
    for raw in dataset.files.values():
        values |= {email.lower() for email in EMAIL.findall(raw.decode("utf-8", "replace"))}
    return values


def test_no_log_line_of_any_function_holds_an_email_or_a_phone(tour: TourContext) -> None:
    logs = sorted(Path(tour.cloud.runtime.log_dir).glob("*.log"))
    assert logs, "the local cloud wrote no function log"
    used = used_by_the_tour(tour)
    found: list[str] = []
    for log in logs:
        for number, line in enumerate(log.read_text(errors="replace").splitlines(), start=1):
            personal = set(EMAIL.findall(line)) | set(E164.findall(line))
            personal |= {value for value in used if value in line.lower()}
            if personal:
                found.append(f"{log.name}:{number}: {sorted(personal)}")
    assert not found, f"{len(found)} log line(s) hold personal data:\n" + "\n".join(found[:20])
