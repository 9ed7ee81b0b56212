"""The steps of an audience build, run by Step Functions: plan, one shard each (Distributed Map), finish.

- plan: the shards of the build (customer ids end with a random base32 character, so shards
  split evenly);
- shard: the segment's SQL for this shard on the lake (Athena in the cloud, DuckDB locally);
  Athena's CSV result is the shard's part of the audience. A membership build then reconciles:
  customers the lake finds but who are not members, and members the lake no longer finds, are
  re-evaluated with the real-time predicate on the projection (the lake may lag behind it by
  the stream's buffering; the projection is the truth). A static segment built from a rule
  takes the lake's answer as its snapshot;
- finish: the manifest (JSON listing the parts and the count) next to the parts, the build's
  status, and `AudienceBuilt`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from ecrm.analysis.membership import MembershipService
from ecrm.analysis.models import AudienceBuilt
from ecrm.analysis.segment_sql import LakeTables, Shard, audience_sql
from ecrm.analysis.segments import RULE, SegmentService

CUSTOMERS_PER_SHARD = 250_000


def customers_sql(tables: LakeTables) -> str:
    """How many customers the lake holds (latest profile rows, deleted ones included: an upper bound)."""
    return f"SELECT count(DISTINCT customer_id) AS customers FROM {tables.profiles}"  # noqa: S608 - a table name


@dataclass
class AudienceSteps:
    segments: SegmentService
    membership: MembershipService
    s3: Any
    bucket: str

    def plan(self, audience_id: str) -> dict[str, Any]:
        """As many shards as the lake's customers need (about 250,000 each), at most the configured number."""
        build = self.segments.audience(audience_id)
        counted = self.segments.lake.run(customers_sql(self.segments.tables))
        first: dict[str, str | None] = next(iter(counted.rows(1)), {})
        customers = int(first.get("customers") or 0)
        shards = max(1, min(build.shards, math.ceil(customers / CUSTOMERS_PER_SHARD)))
        if shards != build.shards:
            self.segments.store.put_build(build.model_copy(update={"shards": shards}))
        return {
            "audience_id": audience_id,
            "customers": customers,
            "shards": [{"audience_id": audience_id, "index": i, "count": shards} for i in range(shards)],
        }

    def shard(self, audience_id: str, index: int, count: int) -> dict[str, Any]:
        build = self.segments.audience(audience_id)
        segment = self.segments.get(build.segment_id)
        assert segment.rule is not None
        rule = RULE.validate_python(segment.rule)
        shard = Shard(index, count)
        sql = audience_sql(
            rule, now=build.evaluated_at, tables=self.segments.tables, catalog=self.segments.catalog, shard=shard
        )
        result = self.segments.lake.run(sql)
        found = [row["customer_id"] for row in result.rows() if row.get("customer_id")]
        entered = exited = 0
        if build.purpose == "membership":
            if segment.kind == "static":
                for customer_id in found:
                    entered += self.segments.store.enter(customer_id, segment.segment_id, build.evaluated_at)
            else:
                current = set(self.segments.store.members(segment.segment_id, shard.endings))
                candidates = sorted(set(found) ^ current)
                for customer_id in candidates:
                    for event in self.membership.reevaluate(customer_id, trigger="build", only={segment.segment_id}):
                        if event.detail_type == "SegmentEntered":
                            entered += 1
                        else:
                            exited += 1
        return {
            "index": index,
            "count": len(found),
            "part": result.output_location,
            "entered": entered,
            "exited": exited,
            "scanned_bytes": result.scanned_bytes,
        }

    def finish(self, audience_id: str, results: list[dict[str, Any]]) -> dict[str, Any]:
        build = self.segments.audience(audience_id)
        now = self.segments.clock.now()
        ordered = sorted(results, key=lambda r: r["index"])
        total = sum(int(r["count"]) for r in ordered)
        key = f"audiences/{audience_id}/manifest.json"
        manifest = {
            "audience_id": audience_id,
            "segment_id": build.segment_id,
            "segment_version": build.segment_version,
            "evaluated_at": build.evaluated_at.isoformat(),
            "count": total,
            "format": "csv",
            "header": True,
            "columns": ["customer_id"],
            "parts": [{"location": r["part"], "count": int(r["count"])} for r in ordered],
        }
        self.s3.put_object(
            Bucket=self.bucket, Key=key, Body=json.dumps(manifest, indent=2).encode(), ContentType="application/json"
        )
        location = f"s3://{self.bucket}/{key}"
        done = build.model_copy(
            update={
                "status": "completed",
                "count": total,
                "entered": sum(int(r.get("entered", 0)) for r in ordered),
                "exited": sum(int(r.get("exited", 0)) for r in ordered),
                "manifest": location,
                "completed_at": now,
            }
        )
        self.segments.store.put_build(done)
        self.membership.publisher.publish_all(
            [
                AudienceBuilt(
                    audience_id=audience_id, segment_id=build.segment_id, count=total, manifest=location, built_at=now
                )
            ]
        )
        return {"audience_id": audience_id, "count": total, "manifest": location}

    def fail(self, audience_id: str, error: Any) -> dict[str, Any]:
        build = self.segments.audience(audience_id)
        reason = error.get("Cause") or error.get("Error") if isinstance(error, dict) else str(error)
        self.segments.store.put_build(
            build.model_copy(
                update={"status": "failed", "failure": str(reason)[:1000], "completed_at": self.segments.clock.now()}
            )
        )
        return {"audience_id": audience_id, "status": "failed"}
