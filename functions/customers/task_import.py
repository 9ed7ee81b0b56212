"""The steps of the import state machine: prepare, chunk (one per chunk, in parallel), finish, fail."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.core import aws
from ecrm.core.config import load_config
from ecrm.core.contract import Contract
from ecrm.core.observability import Observability
from ecrm.customers.import_jobs import ImportPipeline
from ecrm.customers.wiring import CustomersConfig, service_for
from pydantic import Field

config = load_config(CustomersConfig)
obs = Observability(config)


class Prepare(Contract):
    step: Literal["prepare"]
    key: str
    import_id: str | None = None


class Chunk(Contract):
    step: Literal["chunk"]
    import_id: str
    index: int
    key: str


class Finish(Contract):
    step: Literal["finish", "fail"]
    import_id: str
    cause: str = ""


class Step(Contract):
    task: Annotated[Prepare | Chunk | Finish, Field(discriminator="step")]


@cache
def default_pipeline() -> ImportPipeline:
    service = service_for(config)
    return ImportPipeline(service, aws.client("s3"), config.import_bucket_name, service.publisher)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: ImportPipeline | None = None) -> dict[str, Any]:
    pipeline = injected or default_pipeline()
    task = Step.model_validate({"task": event}).task
    obs.logger.append_keys(import_step=task.step)
    if isinstance(task, Prepare):
        return pipeline.prepare(task.key, task.import_id)
    if isinstance(task, Chunk):
        counts = pipeline.chunk(task.import_id, task.index, task.key)
        obs.metrics.add_metric(name="ImportRows", unit="Count", value=counts.get("processed_rows", 0))
        return counts
    if task.step == "finish":
        return pipeline.finish(task.import_id)
    return pipeline.fail(task.import_id, task.cause)
