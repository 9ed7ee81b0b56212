"""`ecrm campaign ...` against a fake API: what is called, what is printed, when watching ends.

The HTTP layer is a double handed in as the click context's object (`campaign_cli.Transport`), so
nothing here reaches a network; sleeping between two reads is a no-op recorded by the double.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from ecrm_ops import campaign_cli
from ecrm_ops.campaign_cli import CampaignApi, RunWatch, Transport, report_lines, watch_run
from ecrm_ops.cli import main
from ecrm_ops.http import HttpResult

import infra.local.state

CAMPAIGN = "cmp_01JABCDEF"
API = ["--api-url", "http://127.0.0.1:9", "--token", "staff-token"]


def arm(name: str, **counts: int) -> dict[str, Any]:
    return {"arm": name, "targeted": 0, "requested": 0, **counts, "rates": {}}


def progress(status: str, a: dict[str, int], holdout: int = 10) -> dict[str, Any]:
    return {
        "campaign_id": CAMPAIGN,
        "status": status,
        "arms": [arm("a", **a), arm("holdout", targeted=holdout)],
        "lift": [],
        "winner": None,
    }


RUNNING = progress("running", {"targeted": 90, "requested": 90, "sent": 40})
HALF_DELIVERED = progress("running", {"targeted": 90, "requested": 90, "sent": 80, "delivered": 30})
COMPLETED_UNDECIDED = progress("completed", {"targeted": 90, "requested": 90, "sent": 85, "delivered": 80})
COMPLETED = progress("completed", {"targeted": 90, "requested": 90, "sent": 88, "suppressed": 2, "delivered": 85})
REPORT: dict[str, Any] = {
    "campaign_id": CAMPAIGN,
    "status": "completed",
    "winner": None,
    "arms": [
        {
            **arm("a", targeted=900, requested=900, sent=890, delivered=880, opened=200, converted=45),
            "revenue_minor": 123450,
            "rates": {"delivery": 0.988764, "open": 0.227273, "conversion": 0.05},
        },
        {**arm("holdout", targeted=100, converted=2), "rates": {"conversion": 0.02}},
    ],
    "lift": [
        {
            "arm": "a",
            "metric": "conversion",
            "treated_rate": 0.05,
            "control_rate": 0.02,
            "difference": 0.03,
            "low": 0.001,
            "high": 0.059,
            "confidence": 0.95,
            "p_value": 0.0412,
            "significant": True,
        }
    ],
}


class FakeApi:
    """Answers each path from a script: a list of answers is consumed one per call (its last one repeats)."""

    def __init__(self, answers: dict[tuple[str, str], Any]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, str, Any, str | None]] = []

    def __call__(self, method: str, url: str, *, token: str | None = None, body: Any = None) -> HttpResult:
        path = url.removeprefix("http://127.0.0.1:9")
        self.calls.append((method, path, body, token))
        answer = self.answers[(method, path)]
        if isinstance(answer, list):
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        status, payload = answer if isinstance(answer, tuple) else (200, answer)
        return HttpResult(status, {}, payload)


@pytest.fixture(autouse=True)
def no_local_cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(infra.local.state, "STATE_FILE", tmp_path / "no-cloud" / "state.json")
    for name in ("ECRM_API_URL", "ECRM_TOKEN", "ECRM_DEBUG"):
        monkeypatch.delenv(name, raising=False)


def run(api: FakeApi, *args: str, stdin: str | None = None, slept: list[float] | None = None) -> Result:
    waits = [] if slept is None else slept
    transport = Transport(api, sleep=waits.append)
    return CliRunner().invoke(main, ["campaign", *args], obj=transport, input=stdin, prog_name="ecrm")


def report_path(campaign_id: str = CAMPAIGN) -> tuple[str, str]:
    return ("GET", f"/campaigns/{campaign_id}/report")


# -- launch and watch -----------------------------------------------------------------------------------------
def test_launch_watch_prints_a_line_per_change_until_the_run_completes_and_its_messages_are_decided() -> None:
    # Given a campaign whose report moves through the run, twice unchanged on the way
    api = FakeApi(
        {
            ("POST", f"/campaigns/{CAMPAIGN}/launch"): {"status": "running", "run": 1, "schedule": {"kind": "now"}},
            report_path(): [RUNNING, RUNNING, HALF_DELIVERED, COMPLETED_UNDECIDED, COMPLETED, COMPLETED],
        }
    )

    # When it is launched with --watch, piped (not a terminal)
    slept: list[float] = []
    result = run(api, "launch", CAMPAIGN, "--watch", "--interval", "0.5", *API, slept=slept)

    # Then the launch is called once with the token, and each distinct report printed once, in order
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"{CAMPAIGN}: running (run 1)"
    progress_lines = lines[1:-1]
    assert [line.split("] ", 1)[1].split()[0] for line in progress_lines] == [
        "running",
        "running",
        "completed",
        "completed",
    ]
    assert "a: 90 targeted, 90 requested, 40 sent, 0 delivered, 0 suppressed, 0 deferred, 0 failed" in lines[1]
    assert "holdout: 10 targeted" in lines[1]
    assert "2 suppressed" in progress_lines[-1]
    assert lines[-1] == "run completed: 90 handed to broadcast"
    # And it stopped reading at the first completed report whose messages all have an outcome
    assert [c[0:2] for c in api.calls].count(report_path()) == 5
    assert all(c[3] == "staff-token" for c in api.calls)
    assert slept == [0.5] * 4


def test_a_run_completed_with_messages_still_deferred_ends_the_watch_once_nothing_changes() -> None:
    deferred = progress("completed", {"targeted": 90, "requested": 90, "sent": 60, "delivered": 60})
    watch = RunWatch()

    ends = [watch.done(dict(deferred)) for _ in range(campaign_cli.QUIET_POLLS + 1)]

    assert ends == [False] * campaign_cli.QUIET_POLLS + [True]


@pytest.mark.parametrize(
    ("statuses", "ends_at"),
    [
        (["running", "paused"], 1),  # a pause stops the run: nothing more comes until a resume
        (["running", "cancelled"], 1),
        (["scheduled", "scheduled", "running", "scheduled"], 3),  # a recurring run back to its schedule
    ],
)
def test_the_watch_ends_when_the_run_stops(statuses: list[str], ends_at: int) -> None:
    watch = RunWatch()

    ends = [watch.done(progress(s, {"targeted": 1, "requested": 1, "sent": 1})) for s in statuses]

    assert ends.index(True) == ends_at


def test_ctrl_c_stops_the_watching_not_the_campaign() -> None:
    # Given a watch interrupted while it waits between two reads
    api = FakeApi({report_path(): [RUNNING]})

    def interrupted(_: float) -> None:
        raise KeyboardInterrupt

    out = io.StringIO()
    last = watch_run(
        CampaignApi("http://127.0.0.1:9", "t", api), CAMPAIGN, interval=1, out=out, tty=False, sleep=interrupted
    )

    # Then it says the campaign goes on, and only reports were read (no pause, no cancel)
    assert last is None
    assert "stopped watching" in out.getvalue()
    assert f"ecrm campaign status {CAMPAIGN} --watch" in out.getvalue()
    assert {c[0] for c in api.calls} == {"GET"}


def test_on_a_terminal_the_progress_table_is_redrawn_in_place() -> None:
    api = FakeApi({report_path(): [RUNNING, COMPLETED]})
    ticks = iter(range(100))
    out = io.StringIO()

    last = watch_run(
        CampaignApi("http://127.0.0.1:9", "t", api),
        CAMPAIGN,
        interval=1,
        out=out,
        tty=True,
        sleep=lambda _: None,
        clock=lambda: float(next(ticks)),
    )

    assert last == COMPLETED
    text = out.getvalue()  # (rich draws in place on a terminal; into a file, the last table stays)
    assert f"{CAMPAIGN}  completed" in text
    assert "targeted" in text
    assert " 88 " in text  # a's sent
    assert "Ctrl-C stops watching" in text


def test_launch_of_a_scheduled_campaign_says_so_without_watching() -> None:
    api = FakeApi(
        {("POST", f"/campaigns/{CAMPAIGN}/launch"): {"status": "scheduled", "run": 0, "schedule": {"kind": "at"}}}
    )

    result = run(api, "launch", CAMPAIGN, *API)

    assert result.exit_code == 0, result.output
    assert result.output == f"{CAMPAIGN}: scheduled, on its at schedule (run 0)\n"


# -- status, report, list, create -----------------------------------------------------------------------------
def test_status_once_prints_each_arm_and_the_total() -> None:
    result = run(FakeApi({report_path(): [COMPLETED]}), "status", CAMPAIGN, *API)

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"campaign {CAMPAIGN}: completed"
    assert lines[1].split() == ["arm", "targeted", "requested", "sent", "delivered", "suppressed", "deferred", "failed"]
    assert lines[2].split() == ["a", "90", "90", "88", "85", "2", "0", "0"]
    assert lines[3].split() == ["holdout", "10", "0", "0", "0", "0", "0", "0"]
    assert lines[4].split() == ["all", "100", "90", "88", "85", "2", "0", "0"]


def test_report_shows_rates_and_the_lift_with_its_interval_and_significance() -> None:
    text = "\n".join(report_lines(REPORT))

    assert "a: delivery 98.88%, open 22.73%, conversion 5.00%" in text
    assert "lift against the holdout (conversion, 95% interval):" in text
    assert "a: 5.00% vs 2.00%, +3.00 pts [+0.10, +5.90], p = 0.0412, significant" in text
    assert "1234.50" in text  # revenue, in major units


def test_report_without_a_holdout_says_there_is_nothing_to_compare_with() -> None:
    text = "\n".join(report_lines({**REPORT, "arms": REPORT["arms"][:1], "lift": []}))

    assert "lift: no holdout to compare with" in text


def test_report_json_is_the_api_answer() -> None:
    result = run(FakeApi({report_path(): REPORT}), "report", CAMPAIGN, "--json", *API)

    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == REPORT


def test_list_pages_with_the_cursor_the_api_gave() -> None:
    item = {"campaign_id": CAMPAIGN, "status": "draft", "run": 0, "created_at": "2026-12-06T10:00:00Z", "name": "Sale"}
    api = FakeApi({("GET", "/campaigns?limit=1&after=abc"): {"items": [item], "next": "def"}})

    result = run(api, "list", "--limit", "1", "--after", "abc", *API)

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1].split() == [CAMPAIGN, "draft", "0", "2026-12-06T10:00:00", "Sale"]
    assert result.output.splitlines()[-1] == "more: ecrm campaign list --after def"


def test_create_posts_the_file_and_prints_the_new_id() -> None:
    body = {"name": "Sale", "audience": {"customer_ids": ["cus_1"]}, "variants": []}
    api = FakeApi({("POST", "/campaigns"): (201, {"campaign_id": CAMPAIGN})})

    result = run(api, "create", "-", *API, stdin=json.dumps(body))

    assert result.exit_code == 0, result.output
    assert result.output == f"{CAMPAIGN}\n"
    assert api.calls[0][2] == body


# -- mistakes: one line, exit 2 for a usage error, 1 for the rest ---------------------------------------------
def one_error_line(result: Result, code: int) -> str:
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_a_malformed_campaign_id_is_a_usage_error_before_any_call() -> None:
    api = FakeApi({})

    line = one_error_line(run(api, "status", "campaign-7", *API), 2)

    assert "is not a campaign id" in line
    assert api.calls == []


@pytest.mark.parametrize(
    ("status", "problem", "fragment"),
    [
        (404, {"detail": f"no campaign {CAMPAIGN}"}, f"no campaign {CAMPAIGN}"),
        (409, {"detail": "a completed campaign cannot be launched"}, "a completed campaign cannot be launched"),
        (403, {"title": "Forbidden"}, "the API refused the token (403: Forbidden)"),
        (500, {"title": "Internal error"}, f"POST /campaigns/{CAMPAIGN}/launch -> 500: Internal error"),
    ],
)
def test_an_api_refusal_is_one_line_with_its_reason(status: int, problem: dict[str, str], fragment: str) -> None:
    api = FakeApi({("POST", f"/campaigns/{CAMPAIGN}/launch"): (status, problem)})

    assert fragment in one_error_line(run(api, "launch", CAMPAIGN, *API), 1)


def test_a_read_is_asked_again_after_a_gateway_error_and_a_write_is_not() -> None:
    # Given an API whose first answers are gateway errors (a sandbox timing out as it starts)
    gateway_error = (502, {"title": "Gateway error"})
    api = FakeApi({report_path(): [gateway_error, gateway_error, COMPLETED], ("POST", "/campaigns"): [gateway_error]})
    slept: list[float] = []

    # Then a read answers after its retries, and a write says what failed at once
    assert run(api, "status", CAMPAIGN, *API, slept=slept).exit_code == 0
    assert slept == [1.0, 2.0]
    line = one_error_line(run(api, "create", "-", *API, stdin="{}"), 1)
    assert "POST /campaigns -> 502" in line
    assert [c[0] for c in api.calls].count("POST") == 1


def test_a_body_that_is_not_json_names_where_it_came_from(tmp_path: Path) -> None:
    body = tmp_path / "campaign.json"
    body.write_text("{oops", encoding="utf-8")

    assert "stdin: not JSON" in one_error_line(run(FakeApi({}), "create", "-", *API, stdin="{oops"), 1)
    assert f"{body}: not JSON" in one_error_line(run(FakeApi({}), "create", str(body), *API), 1)


def test_without_a_local_cloud_or_an_api_url_it_says_how_to_reach_one() -> None:
    line = one_error_line(run(FakeApi({}), "list"), 1)

    assert "no local cloud is running here" in line
    assert "--api-url" in line
