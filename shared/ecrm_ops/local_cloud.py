"""Operator actions behind the CLI: running the local cloud, tokens for it, DLQ redrive."""

from __future__ import annotations

import errno
import itertools
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

from ecrm_ops.user_errors import OperatorError

STAFF_PASSWORD = "Local-Only-Passw0rd!"  # noqa: S105 - users of the local cloud only
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")
NO_SUCH_QUEUE = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")


class RedriveRefused(Exception):
    """The queue named cannot be redriven (unknown, or neither a dead-letter queue nor fed by one)."""


def ensure_port_free(port: int, host: str = "127.0.0.1") -> None:
    """Fail at once, naming the port, when the API could not listen on it (instead of after synthesis)."""
    if port == 0:
        return
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the API's server does
        try:
            probe.bind((host, port))
        except PermissionError:
            raise OperatorError(f"port {port} needs privileges: choose one above 1023 with --port") from None
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            raise OperatorError(
                f"port {port} on {host} is already in use{_running_cloud_hint(port)}: stop what uses it, or choose "
                "another port with --port N (--port 0 picks a free one)"
            ) from None


DEFAULT_API_PORT = 4510


def choose_api_port(requested: int | None) -> tuple[int, str]:
    """The API's port, and a note when it is not the default: a port asked for must be free (else a
    one-line error); without one, 4510 when free, else any free port (a second cloud runs beside the first)."""
    if requested is not None:
        ensure_port_free(requested)
        return requested, ""
    try:
        ensure_port_free(DEFAULT_API_PORT)
    except OperatorError:
        return 0, f"port {DEFAULT_API_PORT} is in use{_running_cloud_hint(DEFAULT_API_PORT)}: the API takes a free port"
    return DEFAULT_API_PORT, ""


def choose_state_dir() -> tuple[Path, str]:
    """Where this cloud keeps its state, and a note when it is not the usual place.

    The checkout's `.local-cloud/` (or `$ECRM_LOCAL_STATE_DIR`) unless a local cloud still answers
    there: then the next free `<that>/clouds/<n>/`, so each cloud has its own state file, logs and
    fault log, and stopping one never removes another's.
    """
    from infra.local.state import STATE_DIR

    if not _answering_cloud(STATE_DIR / "state.json"):
        return STATE_DIR, ""
    for number in itertools.count(2):
        candidate = STATE_DIR / "clouds" / str(number)
        if not _answering_cloud(candidate / "state.json"):
            return candidate, (
                f"another local cloud runs with {STATE_DIR}: this one keeps its state in {candidate} "
                f"(point commands at it with ECRM_LOCAL_STATE_DIR={candidate})"
            )
    raise AssertionError("unreachable")


def _answering_cloud(state_file: Path) -> str:
    """The API address of the local cloud whose state `state_file` holds, if it still answers; else ""."""
    try:
        from infra.local.state import CloudState

        state = CloudState.load(state_file)
    except (OSError, ImportError, ValueError, TypeError):
        return ""
    host, _, port = state.api_url.removeprefix("http://").partition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return state.api_url
    except (OSError, ValueError):
        return ""  # a stale state file: a new cloud replaces it


def _running_cloud_hint(port: int) -> str:
    try:
        from infra.local.state import STATE_FILE, CloudState

        state = CloudState.load()
    except (OSError, ImportError, ValueError, TypeError):
        return ""
    if state.api_url.endswith(f":{port}"):
        return f" (by a local cloud, as {STATE_FILE.name} says: `ecrm local up` already running?)"
    return ""


def check_fault_spec(ctx: Any, param: Any, spec: str) -> str:
    """`--faults`: a spec the local cloud can read, or a one-line usage error (exit 2)."""
    import click

    from infra.local.faults import FaultSpecError, parse

    try:
        parse(spec)
    except FaultSpecError as exc:
        raise click.BadParameter(str(exc)) from None
    return spec


def start_cloud(*, api_port: int = 0, verbose: bool = False, faults: str = "", state_dir: Path | None = None) -> Any:
    from rich.console import Console

    from infra.local.cloud import LocalCloud

    console = Console(stderr=True)
    echo = (
        (lambda where, line: console.print(f"[dim]{where}[/dim] {line}", markup=True, highlight=False))
        if verbose
        else None
    )
    with console.status("synthesizing the CDK app and provisioning the local cloud..."):
        if state_dir is None:
            cloud = LocalCloud(api_port=api_port, echo=echo, faults=faults)
        else:
            cloud = LocalCloud(api_port=api_port, echo=echo, faults=faults, state_dir=state_dir)
        cloud.start()
    return cloud


def print_banner(cloud: Any) -> None:
    state = cloud.state
    print(
        f"eCRM local cloud is up\n"
        f"  API          {state.api_url}\n"
        f"  AWS (moto)   {state.endpoint_url}   region {state.region}\n"
        f"  event bus    {state.event_bus_name}\n"
        f"  user pool    {state.user_pool_id}\n"
        f"  functions    {len(cloud.runtime.functions)}, queues consumed {len(cloud.pollers)}, "
        f"routes {len(cloud.gateway.routes)}, schedules {len(cloud.scheduler.schedules)}\n"
        f"  logs         {_shown(cloud.state_dir / 'logs')}/<function>.log\n"
        f"Try:\n"
        f"  curl {state.api_url}/health\n"
        f"  TOKEN=$(.venv/bin/ecrm local token --group marketer)\n"
        f'  curl -H "Authorization: $TOKEN" {state.api_url}/whoami\n',
        flush=True,
    )


def _shown(path: Path) -> str:
    """A path as the operator would type it: relative to the working directory when under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def run_until_interrupted(cloud: Any) -> None:
    print_banner(cloud)
    stop = threading.Event()
    # Both stop it cleanly, also when started in the background (where SIGINT is inherited as ignored).
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping the local cloud", flush=True)
        cloud.stop()


def cognito_client(endpoint_url: str, region: str) -> Any:
    return boto3.client(
        "cognito-idp",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - the local cloud accepts any key
    )


def issue_token(
    *, group: str | None = None, customer_id: str | None = None, email: str | None = None, state: Any = None
) -> str:
    """An ID token from the local Cognito for a staff user of `group` or the customer `customer_id`."""
    from infra.local.state import CloudState

    state = state or CloudState.load()
    cognito = cognito_client(state.endpoint_url, state.region)
    email = email or (f"{group}@example.com" if group else f"{customer_id}@customers.example.com".lower())
    attributes = [{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}]
    if customer_id:
        attributes.append({"Name": "custom:customer_id", "Value": customer_id})
    try:
        cognito.admin_create_user(
            UserPoolId=state.user_pool_id, Username=email, UserAttributes=attributes, MessageAction="SUPPRESS"
        )
    except cognito.exceptions.UsernameExistsException:
        if customer_id:  # the same user asked again for another customer id
            cognito.admin_update_user_attributes(
                UserPoolId=state.user_pool_id,
                Username=email,
                UserAttributes=[{"Name": "custom:customer_id", "Value": customer_id}],
            )
    cognito.admin_set_user_password(
        UserPoolId=state.user_pool_id, Username=email, Password=STAFF_PASSWORD, Permanent=True
    )
    if group:
        cognito.admin_add_user_to_group(UserPoolId=state.user_pool_id, Username=email, GroupName=group)
    client_id = state.staff_client_id if group else state.customer_client_id
    auth = cognito.admin_initiate_auth(
        UserPoolId=state.user_pool_id,
        ClientId=client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": STAFF_PASSWORD},
    )
    return str(auth["AuthenticationResult"]["IdToken"])


def sqs_client(*, on_aws: bool = False, endpoint_url: str | None = None, region: str | None = None) -> tuple[Any, str]:
    """(SQS client, where it points). The running local cloud unless AWS or an endpoint is asked for explicitly:
    without a local cloud this raises FileNotFoundError, never falls back to the caller's AWS account."""
    local_keys = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
    if on_aws:
        client = boto3.client("sqs", region_name=region)
        return client, f"AWS, {client.meta.region_name}"
    if endpoint_url:
        is_local = any(f"//{host}" in endpoint_url for host in LOCAL_HOSTS)
        keys = local_keys if is_local else {}
        client = boto3.client("sqs", endpoint_url=endpoint_url, region_name=region or "us-east-1", **keys)  # type: ignore[call-overload]
        return client, endpoint_url
    try:
        from infra.local.state import CloudState
    except ImportError:
        raise FileNotFoundError("the local cloud is not installed here") from None
    state = CloudState.load()
    client = boto3.client("sqs", endpoint_url=state.endpoint_url, region_name=state.region, **local_keys)  # type: ignore[call-overload]
    return client, f"the local cloud at {state.endpoint_url}"


def _queue_url(sqs: Any, name: str) -> str:
    from botocore.exceptions import ClientError

    try:
        return str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in NO_SUCH_QUEUE:
            raise
    raise RedriveRefused(f"no queue named {name!r}{_queue_suggestions(sqs, name)}")


def resolve_queue(sqs: Any, queue: str) -> str:
    """The URL of `queue`: a URL, an exact name, or a part of one (CDK names queues `<Stack>-<Id>-<hash>`).

    A part that matches a queue and its dead-letter queue (`PingConsumer`) means the source queue.
    """
    if queue.startswith(("http://", "https://")):
        return queue
    urls = sqs.list_queues(QueueNamePrefix="").get("QueueUrls", []) if queue else []
    by_name = {url.rsplit("/", 1)[1]: url for url in urls}
    if queue in by_name:
        return by_name[queue]
    matches = [url for name, url in by_name.items() if queue.lower() in name.lower()]
    if len(matches) > 1:  # a queue and its DLQ: the source queue
        sources = [url for url in matches if "RedrivePolicy" in _attributes(sqs, url, "RedrivePolicy")]
        matches = sources if len(sources) == 1 else matches
    if len(matches) == 1:
        return str(matches[0])
    if matches:
        names = ", ".join(sorted(url.rsplit("/", 1)[1] for url in matches))
        raise RedriveRefused(f"{len(matches)} queues match {queue!r}: {names}")
    return _queue_url(sqs, queue)


def _attributes(sqs: Any, url: str, *names: str) -> dict[str, str]:
    return dict(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(names)).get("Attributes", {}))


def _queue_suggestions(sqs: Any, name: str) -> str:
    """The dead-letter queues there are (when few enough to ask each), else names that look like `name`."""
    import difflib
    import json

    urls = sqs.list_queues().get("QueueUrls", [])
    names = [url.rsplit("/", 1)[1] for url in urls]
    if not names:
        return "; there are no queues"
    if len(names) <= 100:
        dead_letter = set()
        for url in urls:
            policy = _attributes(sqs, url, "RedrivePolicy").get("RedrivePolicy")
            if policy:
                dead_letter.add(json.loads(policy)["deadLetterTargetArn"].rsplit(":")[-1])
        close = difflib.get_close_matches(name, sorted(dead_letter), n=3, cutoff=0.3)
        listed = close or sorted(dead_letter)[:12]
        return f"; dead-letter queues: {', '.join(listed)}" + (" ..." if len(listed) < len(dead_letter) else "")
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.3)
    return f"; did you mean {', '.join(close)}?" if close else ""


def redrive_dead_letters(
    queue: str,
    *,
    sqs: Any,
    max_messages: int = 0,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Move every record of a dead-letter queue back to its source queue; returns how many moved.

    `queue` is the dead-letter queue or its source, by URL, name or a part of the name (`resolve_queue`)."""
    import json

    url = resolve_queue(sqs, queue)
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    if "RedrivePolicy" in attributes:  # a source queue: redrive its DLQ into it
        dlq_arn = json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"]
        dlq_url = _queue_url(sqs, dlq_arn.rsplit(":", 1)[1])
        source_url = url
    else:
        sources = sqs.list_dead_letter_source_queues(QueueUrl=url).get("queueUrls", [])
        if not sources:
            raise RedriveRefused(f"{queue} is neither a dead-letter queue nor a queue with one")
        if len(sources) > 1:
            raise RedriveRefused(f"{queue} is the dead-letter queue of {len(sources)} queues: name the source queue")
        dlq_url, source_url = url, sources[0]
    moved = 0
    while not max_messages or moved < max_messages:
        wanted = min(10, max_messages - moved) if max_messages else 10
        batch = sqs.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=wanted, WaitTimeSeconds=0, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not batch:
            break
        entries = [
            {
                "Id": str(i),
                "MessageBody": m["Body"],
                **({"MessageAttributes": m["MessageAttributes"]} if m.get("MessageAttributes") else {}),
            }
            for i, m in enumerate(batch)
        ]
        result = sqs.send_message_batch(QueueUrl=source_url, Entries=entries)
        sent = {e["Id"] for e in result.get("Successful", [])}
        done = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch) if str(i) in sent]
        if done:
            sqs.delete_message_batch(QueueUrl=dlq_url, Entries=done)
        moved += len(done)
        if progress:
            progress(moved)
        if len(done) < len(batch):
            raise RedriveRefused(f"{len(batch) - len(done)} record(s) could not be sent back; they stay in the DLQ")
    return moved


def invoke_function(name_part: str, event: Any, state: Any = None) -> tuple[str, bool, Any]:
    """Invoke the one function of the running local cloud whose name contains `name_part`."""
    import json

    from infra.local.state import CloudState

    state = state or CloudState.load()
    client = boto3.client(
        "lambda",
        endpoint_url=state.endpoint_url,
        region_name=state.region,
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - the local cloud accepts any key
    )
    names = [f["FunctionName"] for f in client.list_functions()["Functions"]]
    matches = [n for n in names if name_part.lower() in n.lower()]
    if len(matches) != 1:
        raise LookupError(f"{len(matches)} functions match {name_part!r}: {', '.join(matches or names)}")
    response = client.invoke(FunctionName=matches[0], Payload=json.dumps(event).encode())
    payload = json.loads(response["Payload"].read() or b"null")
    return matches[0], "FunctionError" in response, payload
