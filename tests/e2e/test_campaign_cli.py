"""`ecrm campaign` against the local cloud: a small A/B/holdout campaign launched and watched through the CLI,
then its status and report read the same way, as an operator does from a terminal or a CI job (piped, so
the progress comes line by line)."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner, Result
from ecrm.campaigns.assignment import arms_of, assign
from ecrm.campaigns.models import Campaign
from ecrm.core.ids import new_id
from ecrm_ops.cli import main
from ecrm_ops.tour.context import TourContext, expect, wait_for

from tests.e2e.test_broadcast import new_customer


def ecrm(tour: TourContext, token: str, *args: str) -> Result:
    result = CliRunner().invoke(main, [*args, "--api-url", tour.api, "--token", token], prog_name="ecrm")
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def test_a_campaign_launched_and_watched_through_the_cli_reports_what_it_sent(
    tour: TourContext, staff_token: str
) -> None:
    # Given the campaigns API up (its first call starts its sandbox, which a loaded machine makes slow)
    wait_for(
        lambda: tour.call("GET", "/campaigns?limit=1", token=staff_token).status == 200,
        timeout=120,
        what="the campaigns API",
    )
    # And four customers who granted email marketing, in an A/B campaign with a holdout
    run = new_id("cli").lower()
    audience = [new_customer(tour, staff_token, f"{run}-{n}@example.org") for n in range(4)]
    body: dict[str, Any] = {
        "name": "CLI launch",
        "audience": {"customer_ids": audience},
        "variants": [
            {"key": "a", "share": 45, "content": {"email": {"subject": "A", "text": "Variant A"}}},
            {"key": "b", "share": 45, "content": {"email": {"subject": "B", "text": "Variant B"}}},
        ],
        "holdout_share": 10,
    }
    created = expect(tour.call("POST", "/campaigns", token=staff_token, body=body), 201, "campaign").body
    campaign_id = str(created["campaign_id"])
    arms = arms_of(Campaign.model_validate(created))
    assigned = [assign(campaign_id, customer, arms) for customer in audience]
    expected = {arm: assigned.count(arm) for arm in ("a", "b", "holdout")}
    treated = expected["a"] + expected["b"]

    # When it is launched with --watch
    watched = ecrm(tour, staff_token, "campaign", "launch", campaign_id, "--watch", "--interval", "0.5")

    # Then the progress came line by line until the run completed with every treated recipient handed over
    lines = watched.output.splitlines()
    assert lines[0] == f"{campaign_id}: running (run 1)"
    assert any(" completed " in line for line in lines[1:-1]), lines
    assert "holdout: " in lines[-2]
    assert lines[-1].startswith(f"run completed: {treated} handed to broadcast"), lines

    # And once broadcast's events are counted, the report the CLI prints says what was sent, arm by arm
    def report() -> dict[str, Any]:
        return dict(json.loads(ecrm(tour, staff_token, "campaign", "report", campaign_id, "--json").output))

    # (the sends share the suite's one email sender, paced to SES's rate, with every other test's messages)
    done = wait_for(
        lambda: (r := report()) and sum(a["sent"] for a in r["arms"]) == treated and r,
        timeout=180,
        what="the campaign's sends counted",
    )
    assert {a["arm"]: a["targeted"] for a in done["arms"]} == expected
    text = ecrm(tour, staff_token, "campaign", "report", campaign_id).output
    assert f"campaign {campaign_id}: completed" in text
    assert "lift against the holdout (conversion, 95% interval):" in text
    status = ecrm(tour, staff_token, "campaign", "status", campaign_id).output.splitlines()
    assert status[-1].split()[:4] == ["all", "4", str(treated), str(treated)]
    listed = ecrm(tour, staff_token, "campaign", "list", "--limit", "100").output
    assert campaign_id in listed
