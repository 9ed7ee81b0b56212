"""The platform slice in the cloud: its table, API routes, ping consumer and self-check workflow."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.constructs.api_function import ApiFunction, ApiRoute
from infra.constructs.engine_function import EngineFunction
from infra.constructs.engine_table import EngineTable
from infra.constructs.event_queue import EventRuleToQueue, QueueConsumer
from infra.constructs.foundation import Foundation
from infra.constructs.scheduled_job import ScheduledJob
from infra.constructs.workflow import Workflow

ROUTES = (
    ApiRoute("GET", "/health", public=True),
    ApiRoute("GET", "/openapi.json", public=True),
    ApiRoute("GET", "/docs", public=True),
    ApiRoute("GET", "/whoami"),
    ApiRoute("POST", "/pings"),
    ApiRoute("GET", "/pings/{ping_id}"),
)


class PlatformEngine(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, foundation: Foundation) -> None:
        super().__init__(scope, construct_id)
        settings = foundation.settings
        table = EngineTable(self, "Table", key=foundation.key, settings=settings).table
        env = {"PLATFORM_TABLE_NAME": table.table_name, "EVENT_BUS_NAME": foundation.bus.event_bus_name}

        self.api = ApiFunction(self, "Api", foundation=foundation, engine="platform", routes=ROUTES, environment=env)
        table.grant_read_data(self.api.function)
        foundation.bus.grant_put_events_to(self.api.function)

        self.pings = QueueConsumer(
            self,
            "PingConsumer",
            foundation=foundation,
            engine="platform",
            module="on_ping_requested",
            environment={"PLATFORM_TABLE_NAME": table.table_name},
        )
        table.grant_read_write_data(self.pings.handler.function)
        EventRuleToQueue(
            self,
            "PingRequestedRule",
            foundation=foundation,
            consumer=self.pings,
            description="Pings to the platform consumer",
            pattern=events.EventPattern(source=["ecrm.platform"], detail_type=["PingRequested"]),
        )

        selfcheck = EngineFunction(
            self,
            "SelfCheckTask",
            engine="platform",
            module="task_selfcheck",
            settings=settings,
            layers=[foundation.common_layer],
            environment=env,
        )
        table.grant_read_data(selfcheck.function)
        foundation.bus.grant_put_events_to(selfcheck.function)
        send = tasks.LambdaInvoke(
            self,
            "SendPing",
            lambda_function=selfcheck.function,
            payload=sfn.TaskInput.from_object({"step": "send"}),
            result_selector={"ping_id.$": "$.Payload.ping_id"},
            result_path="$.ping",
        )
        wait = sfn.Wait(self, "LetItTravel", time=sfn.WaitTime.duration(Duration.seconds(1)))
        verify = tasks.LambdaInvoke(
            self,
            "VerifyArrival",
            lambda_function=selfcheck.function,
            payload=sfn.TaskInput.from_object({"step": "verify", "ping_id.$": "$.ping.ping_id"}),
            result_selector={"round_trip_ms.$": "$.Payload.round_trip_ms", "ping_id.$": "$.Payload.ping_id"},
            retry_on_service_exceptions=True,
        )
        verify.add_retry(errors=["PingNotArrived"], interval=Duration.seconds(1), backoff_rate=2, max_attempts=6)
        failed = sfn.Fail(self, "PingLost", error="PingLost", cause="the ping never reached the platform table")
        verify.add_catch(failed, errors=["States.ALL"])
        self.selfcheck = Workflow(
            self,
            "SelfCheck",
            settings=settings,
            definition=send.next(wait).next(verify).next(sfn.Succeed(self, "Arrived")),
            timeout=Duration.minutes(5),
            comment="Round trip through the bus: API-less proof the plumbing works",
        )
        self.selfcheck.acknowledge_invokes(selfcheck.function)
        ScheduledJob(
            self,
            "SelfCheckSchedule",
            schedule=settings.selfcheck_schedule,
            state_machine=self.selfcheck.state_machine,
            description="Hourly self-check of the event plumbing",
        )
