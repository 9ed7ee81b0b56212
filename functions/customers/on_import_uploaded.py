"""A file landed in the import bucket (a presigned upload, or a drop under incoming/): start its import once."""

from __future__ import annotations

import json
from functools import cache
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from ecrm.core import aws
from ecrm.core.config import load_config
from ecrm.core.consumer import BusEvent, ServiceEventConsumer
from ecrm.core.observability import Observability
from ecrm.customers.import_jobs import ImportDesk, import_id_from_key, is_drop
from ecrm.customers.wiring import CustomersConfig, service_for

config = load_config(CustomersConfig)
obs = Observability(config)
consumer = ServiceEventConsumer(obs.logger, source="aws.s3", detail_types=["Object Created"])


@cache
def stepfunctions() -> Any:
    return aws.client("stepfunctions")


@cache
def import_desk() -> ImportDesk:
    service = service_for(config)
    return ImportDesk(service.store, aws.client("s3"), config.import_bucket_name, service.clock)


def start_import(event: BusEvent, sfn: Any, desk: ImportDesk) -> None:
    key = unquote_plus(event.detail["object"]["key"])  # S3 event keys are URL-encoded
    if is_drop(key):  # a file dropped in the bucket: its import is registered here
        import_id = desk.register_drop(key, str(event.detail["object"].get("etag", "")))
    else:
        import_id = import_id_from_key(key)
    try:  # the execution name is the import id: a redelivered upload event starts nothing twice
        sfn.start_execution(
            stateMachineArn=config.import_state_machine_arn,
            name=import_id,
            input=json.dumps({"key": key, "import_id": import_id}),
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ExecutionAlreadyExists":
            raise
        obs.logger.info("import already started", extra={"import_id": import_id})


@obs.entrypoint()
def handler(
    event: dict[str, Any], context: LambdaContext, injected: tuple[Any, ImportDesk] | None = None
) -> dict[str, Any]:
    sfn, desk = injected or (stepfunctions(), import_desk())
    return consumer(event, context, lambda bus_event: start_import(bus_event, sfn, desk))
