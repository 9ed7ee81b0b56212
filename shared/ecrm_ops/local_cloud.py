"""Operator actions behind the CLI: running the local cloud, tokens for it, DLQ redrive."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

import boto3

STAFF_PASSWORD = "Local-Only-Passw0rd!"  # noqa: S105 - users of the local cloud only


def start_cloud(*, api_port: int = 0, verbose: bool = False) -> Any:
    from rich.console import Console

    from infra.local.cloud import LocalCloud

    console = Console(stderr=True)
    echo = (
        (lambda where, line: console.print(f"[dim]{where}[/dim] {line}", markup=True, highlight=False))
        if verbose
        else None
    )
    with console.status("synthesizing the CDK app and provisioning the local cloud..."):
        cloud = LocalCloud(api_port=api_port, echo=echo).start()
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
        f"  logs         .local-cloud/logs/<function>.log\n"
        f"Try:\n"
        f"  curl {state.api_url}/health\n"
        f"  TOKEN=$(.venv/bin/ecrm local token --group marketer)\n"
        f'  curl -H "Authorization: $TOKEN" {state.api_url}/whoami\n',
        flush=True,
    )


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


def redrive_dead_letters(
    queue: str,
    *,
    endpoint_url: str | None = None,
    max_messages: int = 0,
    progress: Callable[[int], None] | None = None,
    sqs: Any = None,
) -> int:
    """Move every record of a dead-letter queue back to its source queue; returns how many moved."""
    import json

    if sqs is None:
        if endpoint_url is None:
            try:
                from infra.local.state import CloudState

                endpoint_url = CloudState.load().endpoint_url
            except (FileNotFoundError, ImportError):
                endpoint_url = None
        local = {"region_name": "us-east-1", "aws_access_key_id": "local", "aws_secret_access_key": "local"}
        sqs = boto3.client("sqs", endpoint_url=endpoint_url, **(local if endpoint_url else {}))  # type: ignore[call-overload]
    url = queue if queue.startswith("http") else sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    if "RedrivePolicy" in attributes:  # a source queue: redrive its DLQ into it
        dlq_arn = json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"]
        dlq_url = sqs.get_queue_url(QueueName=dlq_arn.rsplit(":", 1)[1])["QueueUrl"]
        source_url = url
    else:
        sources = sqs.list_dead_letter_source_queues(QueueUrl=url).get("queueUrls", [])
        if len(sources) != 1:
            raise ValueError(f"{queue} is the dead-letter queue of {len(sources)} queues: name the source queue")
        dlq_url, source_url = url, sources[0]
    moved = 0
    while not max_messages or moved < max_messages:
        batch = sqs.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
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
            raise RuntimeError(f"{len(batch) - len(done)} record(s) could not be sent back; they stay in the DLQ")
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
