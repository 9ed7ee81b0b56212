"""Event collection in the cloud: sources table, the Segment-spec ingestion API, the lake stream,
and the lake eraser (the engine's part of every erasure request)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Duration, Tags
from aws_cdk import aws_events as events
from constructs import Construct

from infra.constructs.api_function import ApiFunction, ApiRoute
from infra.constructs.engine_table import EngineTable
from infra.constructs.event_queue import EventRuleToQueue, QueueConsumer
from infra.constructs.foundation import Foundation
from infra.constructs.lake import WAITS_FOR_LAKE_DELIVERY, WAITS_FOR_LAKE_DELIVERY_TAG, Lake
from infra.constructs.nag import acknowledge, finding_reference

if TYPE_CHECKING:
    from infra.engines.analysis import AnalysisEngine

WRITE_KEY = "authenticated by the source's write key (HTTP Basic), checked in the function as the Segment API does"
TRACKING = tuple(
    ApiRoute("POST", f"/v1/{call}", public=True, public_because=WRITE_KEY, cors=True)
    # analytics.js posts to the one-letter paths (/v1/t for track, ...), the other libraries to the full names
    for call in ("identify", "track", "page", "screen", "group", "alias", "batch", "i", "t", "p", "s", "g", "a", "b")
)
ROUTES = (
    *TRACKING,
    ApiRoute("POST", "/sources"),
    ApiRoute("GET", "/sources"),
    ApiRoute("GET", "/sources/{source_id}"),
    ApiRoute("PATCH", "/sources/{source_id}"),
    ApiRoute("POST", "/sources/{source_id}/rotate-key"),
)


class CollectEngine(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, foundation: Foundation, lake: Lake, queries: AnalysisEngine
    ) -> None:
        super().__init__(scope, construct_id)
        from ecrm.core.lake import COLLECTED_EVENT_COLUMNS

        self.table = EngineTable(self, "Table", key=foundation.key, settings=foundation.settings).table
        self.events = lake.add_table(
            "CollectedEvents",
            table="collected_events",
            columns=COLLECTED_EVENT_COLUMNS,
            description="Every accepted tracking call (Segment spec), one row per message",
        )
        env = {
            "COLLECT_TABLE_NAME": self.table.table_name,
            "EVENT_BUS_NAME": foundation.bus.event_bus_name,
            "LAKE_EVENTS_STREAM_NAME": self.events.stream_name,
        }
        # Ingestion is the busiest path: more memory is more CPU, and cold starts stay short.
        self.api = ApiFunction(
            self, "Api", foundation=foundation, engine="collect", routes=ROUTES, environment=env, memory_size=1769
        )
        self.table.grant_read_write_data(self.api.function)
        foundation.bus.grant_put_events_to(self.api.function)
        self.events.grant_put(self.api.function)
        self.eraser = self._lake_eraser(foundation, lake, queries)

    def _lake_eraser(self, foundation: Foundation, lake: Lake, queries: AnalysisEngine) -> QueueConsumer:
        """Erasure requests, delayed past the lake stream's buffering, rewrite the objects holding the rows."""
        from ecrm.core.lake import COLLECTED_EVENTS, ERASURE_STAGING

        eraser = QueueConsumer(
            self,
            "LakeEraser",
            foundation=foundation,
            engine="collect",
            module="on_erasure_requested",
            environment={
                "COLLECT_TABLE_NAME": self.table.table_name,
                "EVENT_BUS_NAME": foundation.bus.event_bus_name,
                "LAKE_BUCKET_NAME": lake.bucket.bucket_name,
                "LAKE_DATABASE": lake.database_name,
                "ATHENA_WORKGROUP": queries.workgroup.name,
            },
            batch_size=1,
            max_concurrency=2,
            timeout=Duration.minutes(5),
            delivery_delay=self.events.settled_after,
        )
        Tags.of(eraser.queue).add(WAITS_FOR_LAKE_DELIVERY_TAG, WAITS_FOR_LAKE_DELIVERY)
        EventRuleToQueue(
            self,
            "ErasureRequestedRule",
            foundation=foundation,
            consumer=eraser,
            description="Erasure requests to the lake eraser of collected events",
            pattern=events.EventPattern(source=["ecrm.customers"], detail_type=["CustomerErasureRequested"]),
        )
        function = eraser.handler.function
        queries.grant_queries(eraser.handler, tables=[COLLECTED_EVENTS])
        # Rewritten objects replace the originals (put over, or delete when no row is left) ...
        lake.bucket.grant_put(function, f"{COLLECTED_EVENTS}/*")
        lake.bucket.grant_delete(function, f"{COLLECTED_EVENTS}/*")
        # ... from what Athena's UNLOAD wrote under the staging prefix, emptied after each object.
        lake.bucket.grant_read_write(function, f"{ERASURE_STAGING}*")
        lake.bucket.grant_delete(function, f"{ERASURE_STAGING}*")
        lake.bucket.add_lifecycle_rule(id="erasure-staging-1-day", prefix=ERASURE_STAGING, expiration=Duration.days(1))
        self.table.grant(function, "dynamodb:PutItem", "dynamodb:DeleteItem")  # object leases
        foundation.bus.grant_put_events_to(function)
        bucket_arn = finding_reference(self, lake.bucket.node.default_child)  # type: ignore[arg-type]
        acknowledge(
            eraser.handler.role,
            "AwsSolutions-IAM5",
            "The lake eraser rewrites objects of collected_events (any day, named by Firehose) and stages "
            "Athena's UNLOAD output under the erasure staging prefix; CDK's S3 grants use action families.",
            applies_to=[
                "Action::s3:DeleteObject*",
                "Action::s3:GetBucket*",
                "Action::s3:GetObject*",
                "Action::s3:List*",
                "Action::s3:Abort*",
                f"Resource::{bucket_arn}/{COLLECTED_EVENTS}/*",
                f"Resource::{bucket_arn}/{ERASURE_STAGING}*",
            ],
        )
        return eraser
