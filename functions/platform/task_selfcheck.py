"""The two steps of the self-check state machine: send a ping, then verify it arrived.

`verify` raises `PingNotArrived` until the consumer has recorded the ping; the state machine
retries that error with backoff and fails the execution if the ping never shows up.
"""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.core.auth import Principal
from ecrm.core.config import load_config
from ecrm.core.contract import Contract
from ecrm.core.observability import Observability
from ecrm.platform import logic
from ecrm.platform.models import PingRequest
from ecrm.platform.wiring import Deps, PlatformConfig, deps_for

SELFCHECK_PRINCIPAL = Principal(subject="selfcheck", username="selfcheck")


class PingNotArrived(Exception):
    """The ping's event has not been consumed yet (retried by the state machine)."""


class SelfCheckStep(Contract):
    step: Literal["send", "verify"]
    ping_id: str | None = None


config = load_config(PlatformConfig)
obs = Observability(config)


def default_deps() -> Deps:
    return deps_for(config)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: Deps | None = None) -> dict[str, Any]:
    deps = injected or default_deps()
    step = SelfCheckStep.model_validate(event)
    if step.step == "send":
        ping = logic.request_ping(PingRequest(message="self-check"), SELFCHECK_PRINCIPAL, deps.clock.now())
        deps.publisher.publish_all([ping])
        return {"ping_id": ping.ping_id}
    if not step.ping_id:
        raise ValueError("verify needs the ping_id returned by send")
    record = deps.store.get(step.ping_id)
    if record is None:
        raise PingNotArrived(f"ping {step.ping_id} not recorded yet")
    obs.metrics.add_metric(name="SelfCheckRoundTripMs", unit="Milliseconds", value=record.round_trip_ms)
    return record.model_dump(mode="json")
