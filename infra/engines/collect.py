"""Event collection in the cloud: sources table, the Segment-spec ingestion API, the lake stream."""

from __future__ import annotations

from constructs import Construct

from infra.constructs.api_function import ApiFunction, ApiRoute
from infra.constructs.engine_table import EngineTable
from infra.constructs.foundation import Foundation
from infra.constructs.lake import Lake

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
    def __init__(self, scope: Construct, construct_id: str, *, foundation: Foundation, lake: Lake) -> None:
        super().__init__(scope, construct_id)
        from ecrm.lake import COLLECTED_EVENT_COLUMNS

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
