"""Every `ecrm` command answers a user's mistake with one line on stderr and a non-zero exit, never a traceback.

Usage errors (a wrong option) exit 2, other mistakes 1, internal errors (bugs) 70 with one line that
says how to see the traceback (`ecrm --debug` or ECRM_DEBUG=1). Nothing here reaches a network: with
no local cloud the commands must refuse before connecting anywhere.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from ecrm_ops import cli
from ecrm_ops.cli import main

import infra.local.state


@pytest.fixture(autouse=True)
def no_local_cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No local cloud here, whatever runs in the checkout; no AWS configuration either."""
    monkeypatch.setattr(infra.local.state, "STATE_FILE", tmp_path / "no-cloud" / "state.json")
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.delenv("ECRM_DEBUG", raising=False)


def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin, env=env, prog_name="ecrm")


def assert_one_line(result: Result, code: int, *fragments: str) -> None:
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in error_lines[0], error_lines[0]


def command_paths(group: click.Group = main, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield prefix
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from command_paths(command, (*prefix, name))
        else:
            yield (*prefix, name)


@pytest.mark.parametrize("path", list(command_paths()), ids=lambda p: " ".join(p) or "ecrm")
def test_dash_h_is_help_on_every_command(path: tuple[str, ...]) -> None:
    short, long = run(*path, "-h"), run(*path, "--help")

    assert short.exit_code == long.exit_code == 0, short.output
    assert short.output == long.output
    assert short.output.startswith("Usage: ecrm")


# -- redrive --------------------------------------------------------------------------------------------------
def test_redrive_without_a_local_cloud_refuses_instead_of_reaching_aws() -> None:
    result = run("redrive", "ecrm-platform-pings-dlq")

    assert_one_line(result, 1, "no local cloud is running here", "--aws")


def test_redrive_on_aws_without_a_region_says_so() -> None:
    result = run("redrive", "ecrm-platform-pings-dlq", "--aws")

    assert_one_line(result, 1, "no AWS region", "--region")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--aws", "--endpoint-url", "http://127.0.0.1:1"], "give --aws or --endpoint-url, not both"),
        (["--region", "eu-west-1"], "--region applies to --aws or --endpoint-url"),
        (["--max-messages", "-1"], "Invalid value for '--max-messages'"),
    ],
)
def test_redrive_option_mistakes_are_usage_errors(args: list[str], message: str) -> None:
    assert_one_line(run("redrive", "q", *args), 2, message)


def test_redrive_to_an_endpoint_that_does_not_answer_names_it(unused_port: int) -> None:
    result = run("redrive", "q", "--endpoint-url", f"http://127.0.0.1:{unused_port}")

    assert_one_line(result, 1, f"cannot reach http://127.0.0.1:{unused_port}")


# -- local ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("", "the event from stdin is empty"),
        ("  \n", "the event from stdin is empty"),
        ("{bad", "the event from stdin is not JSON: Expecting property name"),
    ],
)
def test_local_invoke_with_no_or_bad_input_says_what_is_wrong(stdin: str, message: str) -> None:
    assert_one_line(run("local", "invoke", "SelfCheckTask", stdin=stdin), 1, message)


def test_local_invoke_reads_a_bad_event_file_and_names_it(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text('{"step": ', encoding="utf-8")

    assert_one_line(run("local", "invoke", "X", "--event", str(event)), 1, f"the event from {event} is not JSON")
    assert_one_line(run("local", "invoke", "X", "--event", str(tmp_path / "absent.json")), 2, "absent.json")


def test_local_invoke_and_token_without_a_local_cloud() -> None:
    assert_one_line(run("local", "invoke", "X", stdin="{}"), 1, "no local cloud is running here")
    assert_one_line(run("local", "token", "--group", "admin"), 1, "no local cloud is running here")
    assert_one_line(run("local", "token"), 2, "exactly one of --group or --customer")


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


@pytest.fixture
def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("command", [["local", "up"], ["demo"]])
def test_a_busy_port_fails_at_once_naming_it_and_how_to_choose_another(busy_port: int, command: list[str]) -> None:
    # (`ensure_port_free` runs before anything is synthesized: the command returns without starting a cloud)
    result = run(*command, "--port", str(busy_port))

    assert_one_line(result, 1, f"port {busy_port} on 127.0.0.1 is already in use", "--port")


def test_a_port_out_of_range_is_a_usage_error() -> None:
    assert_one_line(run("local", "up", "--port", "70000"), 2, "Invalid value for '--port'")


# -- import -----------------------------------------------------------------------------------------------------
@pytest.fixture
def people(tmp_path: Path) -> Path:
    path = tmp_path / "people.csv"
    path.write_text("email,first_name\nada@example.com,Ada\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ('{"email": "email",', "people.mapping.json: not JSON (Expecting property name"),
        ('["email"]', "people.mapping.json: expected a JSON object"),
        ("{}", "people.mapping.json: expected a JSON object"),
    ],
)
def test_import_with_a_bad_mapping_names_the_file(people: Path, mapping: str, message: str) -> None:
    mapping_file = people.with_name("people.mapping.json")
    mapping_file.write_text(mapping, encoding="utf-8")

    result = run("import", str(people), "--source", "erp", "--mapping", str(mapping_file))

    assert_one_line(result, 1, message)


def test_import_without_a_local_cloud_or_with_an_api_that_does_not_answer(people: Path, unused_port: int) -> None:
    mapping_file = people.with_name("people.mapping.json")
    mapping_file.write_text('{"email": "email", "first_name": "first_name"}', encoding="utf-8")
    args = ["import", str(people), "--source", "erp", "--mapping", str(mapping_file)]

    assert_one_line(run(*args), 1, "no local cloud is running here", "--api-url")
    remote = ["--api-url", f"http://127.0.0.1:{unused_port}", "--token", "t"]
    assert_one_line(run(*args, *remote), 1, "cannot reach the API")
    assert_one_line(run("import", str(people.with_name("absent.csv")), "--source", "erp", "--mapping", "x"), 2)


def test_personalization_train_local_without_a_local_cloud() -> None:
    assert_one_line(run("personalization", "train", "--local"), 1, "no local cloud is running here")


# -- bugs -------------------------------------------------------------------------------------------------------
@pytest.fixture
def buggy_command() -> Iterator[str]:
    @click.command("buggy")
    def buggy() -> None:
        raise KeyError("a bug")

    main.add_command(buggy)
    yield "buggy"
    main.commands.pop("buggy")


def test_a_bug_is_one_line_that_says_how_to_see_its_traceback(buggy_command: str) -> None:
    result = run(buggy_command)

    assert_one_line(result, 70, "internal error, a bug (KeyError: 'a bug')", "--debug", "ECRM_DEBUG=1")


@pytest.mark.parametrize(("args", "env"), [(["--debug"], {}), ([], {"ECRM_DEBUG": "1"})])
def test_debug_shows_the_bug_itself(buggy_command: str, args: list[str], env: dict[str, str]) -> None:
    result = run(*args, buggy_command, env=env)

    assert isinstance(result.exception, KeyError)  # raised through: click prints its traceback


def test_errors_a_user_can_fix_are_explained_not_called_bugs() -> None:
    from ecrm_ops.user_errors import explain

    assert explain(FileNotFoundError(2, "No such file or directory", "orders.csv")) == (
        "orders.csv: no such file or directory"
    )
    assert explain(PermissionError(13, "Permission denied", "orders.csv")) == "orders.csv: permission denied"
    assert "the input is not utf-8" in (explain(_decode_error()) or "")
    assert explain(KeyError("x")) is None
    assert cli.NO_LOCAL_CLOUD.startswith("no local cloud")


def _decode_error() -> UnicodeDecodeError:
    try:
        b"caf\xe9".decode("utf-8")
    except UnicodeDecodeError as error:
        return error
    raise AssertionError("decoded")


def test_a_local_cloud_that_was_killed_is_named_not_a_traceback(
    unused_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the state file of a local cloud that no longer answers (killed, its state left behind)
    dead = f"http://127.0.0.1:{unused_port}"
    state = infra.local.state.CloudState(dead, dead, "us-east-1", "us-east-1_pool", "staff", "customers", "ecrm")
    state.save(tmp_path / "stale" / "state.json")
    monkeypatch.setattr(infra.local.state, "STATE_FILE", tmp_path / "stale" / "state.json")

    # Then the commands that use it say it does not answer
    for args in (["local", "token", "--group", "admin"], ["redrive", "PingConsumer"]):
        assert_one_line(run(*args), 1, f"cannot reach {dead}", "ecrm local up")


def _running_cloud_state(state_dir: Path, port: int) -> str:
    alive = f"http://127.0.0.1:{port}"
    state = infra.local.state.CloudState(alive, alive, "us-east-1", "us-east-1_pool", "staff", "customers", "ecrm")
    state.save(state_dir / "state.json")
    return alive


def test_a_second_local_cloud_keeps_its_state_apart_from_a_running_one(
    busy_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ecrm_ops.local_cloud import choose_state_dir

    # Given the checkout's state of a local cloud whose API answers (and no ECRM_LOCAL_STATE_DIR)
    monkeypatch.delenv("ECRM_LOCAL_STATE_DIR", raising=False)
    monkeypatch.setattr(infra.local.state, "STATE_DIR", tmp_path / ".local-cloud")
    _running_cloud_state(tmp_path / ".local-cloud", busy_port)

    # When a second one is started, it takes the next state directory of its own, and says how to reach it
    state_dir, note = choose_state_dir()
    assert state_dir == tmp_path / ".local-cloud" / "clouds" / "2"
    assert f"ECRM_LOCAL_STATE_DIR={state_dir}" in note

    # And a third, while both answer, the one after
    _running_cloud_state(state_dir, busy_port)
    assert choose_state_dir()[0] == tmp_path / ".local-cloud" / "clouds" / "3"


def test_a_stale_state_file_is_replaced_not_avoided(
    unused_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ecrm_ops.local_cloud import choose_state_dir

    monkeypatch.delenv("ECRM_LOCAL_STATE_DIR", raising=False)
    monkeypatch.setattr(infra.local.state, "STATE_DIR", tmp_path / ".local-cloud")
    _running_cloud_state(tmp_path / ".local-cloud", unused_port)  # killed: nothing answers

    assert choose_state_dir() == (tmp_path / ".local-cloud", "")


def test_an_explicit_state_directory_in_use_gets_a_directory_of_its_own_beside_it(
    busy_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ecrm_ops.local_cloud import choose_state_dir

    # Given ECRM_LOCAL_STATE_DIR naming the state of a local cloud whose API answers
    monkeypatch.setenv("ECRM_LOCAL_STATE_DIR", str(tmp_path / "mine"))
    monkeypatch.setattr(infra.local.state, "STATE_DIR", tmp_path / "mine")
    _running_cloud_state(tmp_path / "mine", busy_port)

    # Then another cloud keeps its state under it, apart
    assert choose_state_dir()[0] == tmp_path / "mine" / "clouds" / "2"


def test_without_a_port_the_api_takes_a_free_one_when_the_default_is_taken(
    busy_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ecrm_ops import local_cloud

    monkeypatch.setattr(local_cloud, "DEFAULT_API_PORT", busy_port)

    port, note = local_cloud.choose_api_port(None)

    assert port == 0
    assert note.startswith(f"port {busy_port} is in use")


def test_import_checks_the_encoding_before_uploading_and_converts_a_given_one(people: Path) -> None:
    from ecrm_ops.customers.importer import utf8_body

    mapping_file = people.with_name("people.mapping.json")
    mapping_file.write_text('{"email": "email", "first_name": "first_name"}', encoding="utf-8")
    people.write_bytes("email,first_name\nada@example.com,Ada\nzoe@example.com,Zoé\n".encode("cp1252"))

    result = run("import", str(people), "--source", "erp", "--mapping", str(mapping_file))

    assert_one_line(result, 1, "people.csv: line 3 is not utf-8", "--encoding")
    assert utf8_body(people, "cp1252").decode("utf-8").endswith("Zoé\n")
    unknown = run("import", str(people), "--source", "erp", "--mapping", str(mapping_file), "--encoding", "klingon")
    assert_one_line(unknown, 2, "unknown encoding 'klingon'")


@pytest.mark.parametrize("command", [["local", "up"], ["demo", "--once"]])
def test_a_bad_fault_spec_is_a_usage_error_before_anything_starts(command: list[str]) -> None:
    result = run(*command, "--port", "0", "--faults", "sesv2:SendEmail=sometimes")

    assert_one_line(result, 2, "--faults", "sometimes")


def test_demo_runs_the_tour_under_the_faults_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    from ecrm_ops.tour import run as tour_run

    asked: dict[str, object] = {}

    def run_demo(**kwargs: object) -> int:
        asked.update(kwargs)
        return 0

    monkeypatch.setattr(tour_run, "run_demo", run_demo)

    result = run("demo", "--once", "--port", "0", "--faults", "sesv2:SendEmail=throttle@0.33,seed=7")

    assert result.exit_code == 0, result.output
    assert asked["faults"] == "sesv2:SendEmail=throttle@0.33,seed=7"
