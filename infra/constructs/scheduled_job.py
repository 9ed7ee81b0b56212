"""Work on a clock: an EventBridge schedule starting a function or a state machine."""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct


class ScheduledJob(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        schedule: str,
        description: str,
        function: lambda_.IFunction | None = None,
        state_machine: sfn.IStateMachine | None = None,
        enabled: bool = True,
    ) -> None:
        super().__init__(scope, construct_id)
        if (function is None) == (state_machine is None):
            raise ValueError("a scheduled job starts exactly one function or one state machine")
        target: events.IRuleTarget
        if function is not None:
            target = targets.LambdaFunction(function, retry_attempts=2)
        else:
            assert state_machine is not None
            target = targets.SfnStateMachine(state_machine, retry_attempts=2)
        self.rule = events.Rule(
            self,
            "Schedule",
            schedule=events.Schedule.expression(schedule),
            description=description,
            enabled=enabled,
            targets=[target],
        )
