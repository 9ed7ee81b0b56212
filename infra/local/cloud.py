"""`LocalCloud`: the whole platform on 127.0.0.1, built from the synthesized template.

Start-up: a moto server (Step Functions really executing ASL, Lambda invokes routed to our
workers), the CDK app synthesized (bundling skipped: the code runs from the checkout), every
resource provisioned, then pollers, the scheduler and the API front started. A state file under
`.local-cloud/` lets other commands (`ecrm local token`) find the running cloud.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from infra.local import (
    athena,
    broadcast_channels,
    dynamodb_transactions,
    emulated_time,
    firehose,
    moto_hot_paths,
    s3_notifications,
    ses,
    sqs_clock,
    stream_writes,
    synth_cache,
)
from infra.local.clock import LocalClock
from infra.local.faults import FaultPlan
from infra.local.faults import install as install_faults
from infra.local.gateway import LocalGateway, TokenVerifier
from infra.local.in_process_clients import InProcessSqs, InProcessStreams
from infra.local.pollers import QueuePoller, StreamPoller, poller_for
from infra.local.provision import Provisioned, Provisioner
from infra.local.runtime import FunctionRuntime, InvocationError
from infra.local.scheduler import LocalScheduler
from infra.local.state import STACK_NAME, STATE_DIR, CloudState
from infra.local.template import ACCOUNT_ID, REGION, Template
from infra.local.timekeeping import Timekeeping
from infra.settings import REPO_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SYNTH_CACHE = REPO_ROOT / ".local-cloud" / "synth"


def synthesize() -> Path:
    """The CDK app's template, without bundling (the local cloud runs the checkout's code).

    Synthesized once per fingerprint of what the templates are made from (`infra.local.synth_cache`).
    """
    from infra.app import synth

    context: dict[str, object] = {"aws:cdk:bundling-stacks": [], **broadcast_channels.CONTEXT}

    def synthesize_into(folder: Path) -> None:
        synth(str(folder), context)

    key = synth_cache.fingerprint(REPO_ROOT, context, os.environ)
    assembly = synth_cache.cached_assembly(SYNTH_CACHE, key, synthesize_into)
    return assembly / f"{STACK_NAME}.template.json"


class LocalCloud:
    def __init__(
        self,
        *,
        api_port: int = 0,
        moto_port: int = 0,
        template_path: Path | None = None,
        state_dir: Path = STATE_DIR,
        retry_delay: int = 1,
        echo: Callable[[str, str], None] | None = None,
        faults: str = "",
        pollers_over_http: bool = False,
    ) -> None:
        self.api_port = api_port
        # The pollers' calls through the moto server, where a layer in front of it (the cost bench's call
        # counter) sees them; by default they call moto's backends in this process (`in_process_clients`).
        self.pollers_over_http = pollers_over_http
        self.moto_port = moto_port or free_port()
        self.template_path = template_path
        self.state_dir = state_dir
        self.retry_delay = retry_delay
        self.echo = echo
        # Faults on demand (infra/local/faults.py): a bad spec fails here, before anything starts.
        self.faults = FaultPlan(faults, log_path=state_dir / "faults.jsonl")
        self.errors: list[str] = []
        self.channel_ids: dict[str, str] = {}
        self._lock = threading.Lock()
        self.pollers: list[QueuePoller | StreamPoller] = []
        self.clock = LocalClock(on_error=self._record_error)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=REGION,  # type: ignore[call-overload]
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106
            config=Config(retries={"max_attempts": 2, "mode": "standard"}),
        )

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> LocalCloud:
        self._start_moto()
        # The emulated channels stamp their sends and events with the local clock, as functions do.
        emulated_time.use_clock(self.clock.now)
        sqs_clock.install(self.clock.now)  # visibility timeouts and delays end when the clock passes them
        template_path = self.template_path or synthesize()
        self.template = Template.load(template_path, STACK_NAME)
        self.runtime = FunctionRuntime(
            self.endpoint_url, REGION, self.state_dir / "logs", echo=self.echo, skew=lambda: self.clock.offset
        )
        self.runtime.faults = self.faults
        provisioner = Provisioner(self.template, self.client, self.runtime)
        self.provisioned: Provisioned = provisioner.run()
        self.resolver = provisioner.resolver
        _route_lambda_invokes(self.runtime)
        # Voice, WhatsApp and push against their emulations, before any function runs.
        topics = {k: str(self.provisioned.physical[k]) for k in self.logical_ids("AWS::SNS::Topic")}
        # The placeholder -> id each function's environment got (`broadcast_channels` says why).
        self.channel_ids = broadcast_channels.configure(self.runtime, self.client, self.endpoint_url, topics=topics)
        sqs, streams = self.client("sqs"), self.client("dynamodbstreams")
        # The pollers call moto's backends in this process (`in_process_clients` says why), as boto3 would answer.
        polled_sqs: Any = sqs if self.pollers_over_http else InProcessSqs(sqs, region=REGION, faults=self.faults)
        polled_streams: Any = streams if self.pollers_over_http else InProcessStreams(streams, faults=self.faults)
        for mapping in self.provisioned.event_source_mappings:
            if mapping["enabled"]:
                self.pollers.append(
                    poller_for(
                        mapping,
                        sqs=polled_sqs,
                        streams=polled_streams,
                        runtime=self.runtime,
                        region=REGION,
                        retry_delay=self.retry_delay,
                        on_error=self._record_error,
                        now=self.clock.now,
                    )
                )
        self.scheduler = LocalScheduler(
            self.provisioned.schedules,
            runtime=self.runtime,
            stepfunctions=self.client("stepfunctions"),
            account=ACCOUNT_ID,
            region=REGION,
            clock=self.clock,
            sqs=sqs,
            on_error=self._record_error,
        )
        self.timekeeping = Timekeeping(
            clock=self.clock,
            client=self.client,
            rules=self.scheduler,
            account=ACCOUNT_ID,
            region=REGION,
            on_error=self._record_error,
        )
        self.gateway = LocalGateway(
            self.template,
            self.provisioned.physical,
            self.runtime,
            TokenVerifier(self.endpoint_url, REGION),
            account=ACCOUNT_ID,
            port=self.api_port,
        )
        for poller in self.pollers:
            poller.start()
        self.timekeeping.start(self.state_dir)
        self.gateway.start()
        self.state = self._state()
        self.state.save(self.state_dir / "state.json")
        return self

    def stop(self) -> None:
        emulated_time.use_clock(None)
        sqs_clock.uninstall()
        # Every poller stops at once; one still in a 20 s long poll ends on its own (daemon threads).
        for poller in self.pollers:
            poller.signal_stop()
        deadline = time.monotonic() + 1
        for poller in self.pollers:
            poller.stop(timeout=max(0.0, deadline - time.monotonic()))
        if hasattr(self, "timekeeping"):
            self.timekeeping.stop(self.state_dir)
        if hasattr(self, "gateway"):
            self.gateway.stop()
        if hasattr(self, "runtime"):
            self.runtime.stop()
        if hasattr(self, "_moto"):
            self._moto.stop()
        (self.state_dir / "state.json").unlink(missing_ok=True)

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- lookups --------------------------------------------------------------------------------
    def physical_id(self, resource_type: str, logical_prefix: str = "") -> Any:
        """The physical id of the one `resource_type` whose logical id starts with `logical_prefix`."""
        found = [self.provisioned.physical[k] for k in self.logical_ids(resource_type) if k.startswith(logical_prefix)]
        if len(found) != 1:
            raise KeyError(f"{len(found)} {resource_type} match {logical_prefix!r}")
        return found[0]

    def logical_ids(self, resource_type: str) -> list[str]:
        return [k for k, t in self.provisioned.types.items() if t == resource_type]

    def _state(self) -> CloudState:
        pools = self.logical_ids("AWS::Cognito::UserPool")
        clients = {
            self.template.resources[c].properties.get("ClientName", ""): self.provisioned.physical[c]
            for c in self.logical_ids("AWS::Cognito::UserPoolClient")
        }
        buses = self.logical_ids("AWS::Events::EventBus")
        return CloudState(
            api_url=self.gateway.url,
            endpoint_url=self.endpoint_url,
            region=REGION,
            user_pool_id=str(self.provisioned.physical[pools[0]]),
            staff_client_id=next(v for k, v in clients.items() if k.endswith("-staff")),
            customer_client_id=next(v for k, v in clients.items() if k.endswith("-customers")),
            event_bus_name=str(self.provisioned.physical[buses[0]]),
        )

    def _record_error(self, where: str, exc: Exception) -> None:
        with self._lock:
            self.errors.append(f"{where}: {exc}")
        if self.echo:
            self.echo(where, f"error: {exc}")

    def _start_moto(self) -> None:
        from moto.core.config import default_user_config
        from moto.server import ThreadedMotoServer

        # Step Functions' Lambda tasks call back into the server on MOTO_PORT.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        os.environ["MOTO_PORT"] = str(self.moto_port)
        default_user_config["stepfunctions"]["execute_state_machine"] = True
        s3_notifications.install()
        dynamodb_transactions.install()
        firehose.install()
        athena.install()
        ses.install()
        from infra.local import messaging

        messaging.install()
        moto_hot_paths.install()
        stream_writes.install()
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=self.moto_port, verbose=False)
        self._moto.start()
        install_faults(self._moto, self.faults)


def _route_lambda_invokes(runtime: FunctionRuntime) -> None:
    """Send moto's Lambda invocations (direct and from Step Functions) to our workers, not Docker."""
    from moto.awslambda.models import LambdaFunction

    def invoke_locally(self: Any, event: Any = None) -> tuple[str, bool, str]:
        payload = json.loads(event) if isinstance(event, str | bytes) and event else event
        try:
            return json.dumps(runtime.invoke(self.function_name, payload)), False, ""
        except InvocationError as exc:
            error = {k: v for k, v in exc.error.items() if k in {"errorType", "errorMessage", "stackTrace"}}
            return json.dumps(error), True, ""

    LambdaFunction._invoke_lambda = invoke_locally  # type: ignore[method-assign]
