"""Segment definitions and audience builds: the use cases behind `/segments` and `/audiences`.

Saving a segment validates its rule against the field catalogue (every problem named by its path
in the rule), refuses references to unknown segments and cycles, and starts a membership build
so a new dynamic segment has its members at once; from then on the real-time path keeps it
current. A preview runs the rule's SQL on the lake for a count and a sample. A build
(`POST /segments/{id}/build`) runs the SQL in shards with Step Functions and leaves a manifest of
CSV parts that campaigns read (`ecrm.analysis.audiences` holds the steps).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import TypeAdapter

from ecrm.analysis.models import AudienceBuild, Preview, PreviewIn, Segment, SegmentIn
from ecrm.analysis.rule_text import describe
from ecrm.analysis.rules import (
    DEFAULT_CATALOG,
    FieldCatalog,
    Rule,
    SegmentCondition,
    dependencies,
    problems,
    walk,
)
from ecrm.analysis.segment_sql import LakeTables, audience_sql
from ecrm.analysis.store import AnalysisStore
from ecrm.core.clock import Clock
from ecrm.core.contract import DEFERRED
from ecrm.core.errors import EcrmError, NotFound
from ecrm.core.ids import new_id
from ecrm.core.lake import AthenaLake

RULE: TypeAdapter[Rule] = TypeAdapter(Rule, config=DEFERRED)
DEFAULT_SHARDS = 16


class InvalidRule(EcrmError):
    status = 422
    code = "invalid-rule"
    title = "The segment rule is not valid"


class BuildStarter(Protocol):
    def start(self, name: str, payload: dict[str, Any]) -> None: ...


class StepFunctionsStarter:
    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self.client = client
        self.arn = state_machine_arn

    def start(self, name: str, payload: dict[str, Any]) -> None:
        self.client.start_execution(stateMachineArn=self.arn, name=name, input=json.dumps(payload))


@dataclass
class SegmentService:
    store: AnalysisStore
    lake: AthenaLake
    builds: BuildStarter
    clock: Clock
    catalog: FieldCatalog = DEFAULT_CATALOG
    shards: int = DEFAULT_SHARDS

    @property
    def tables(self) -> LakeTables:
        return LakeTables.in_database(self.lake.database)

    def create(self, body: SegmentIn, *, actor: str) -> Segment:
        now = self.clock.now()
        rule_dump: dict[str, Any] | None = None
        time_relative = False
        if body.rule is not None:
            self.check(body.rule)
            rule_dump = RULE.dump_python(body.rule, by_alias=True, exclude_defaults=True, mode="json")
            time_relative = dependencies(body.rule).time_relative
        segment = Segment(
            segment_id=new_id("seg_"),
            name=body.name,
            description=body.description,
            kind=body.kind,
            rule=rule_dump,
            rule_text=describe(body.rule) if body.rule is not None else None,
            time_relative=time_relative,
            created_at=now,
            created_by=actor,
            updated_at=now,
        )
        self.store.put_segment(segment)
        if body.members is not None:
            for customer_id in dict.fromkeys(body.members):
                self.store.enter(customer_id, segment.segment_id, now)
        else:
            build = self.start_build(segment, purpose="membership")
            segment.last_audience_id = build.audience_id
            self.store.update_segment(segment)
        return self.store.get_segment(segment.segment_id)

    def check(self, rule: Rule) -> None:
        """Catalogue problems, unknown segments and cycles, each named by its path in the rule."""
        found = [{"path": p.path, "message": p.message} for p in problems(rule, self.catalog)]
        for path, part in walk(rule):
            if isinstance(part, SegmentCondition):
                try:
                    self._reachable(part.in_segment)
                except NotFound:
                    found.append({"path": f"{path}.in_segment", "message": f"segment {part.in_segment} does not exist"})
        if found:
            raise InvalidRule(
                f"{len(found)} problem(s) in the rule: " + "; ".join(f"{e['path']}: {e['message']}" for e in found),
                errors=found,
            )

    def _reachable(self, segment_id: str, depth: int = 0) -> None:
        """A saved segment exists and what it references exists; a new segment cannot be in a cycle."""
        segment = self.store.get_segment(segment_id)
        if depth > 10:
            raise InvalidRule(f"segment {segment_id} references segments more than 10 levels deep")
        if segment.rule is not None:
            for _, part in walk(RULE.validate_python(segment.rule)):
                if isinstance(part, SegmentCondition):
                    self._reachable(part.in_segment, depth + 1)

    def all(self) -> list[Segment]:
        return sorted(self.store.list_segments(), key=lambda s: s.created_at)

    def get(self, segment_id: str) -> Segment:
        return self.store.get_segment(segment_id)

    def preview(self, body: PreviewIn) -> Preview:
        self.check(body.rule)
        now = self.clock.now()
        counted = self.lake.run(
            audience_sql(body.rule, now=now, tables=self.tables, catalog=self.catalog, count_only=True)
        )
        first: dict[str, str | None] = next(iter(counted.rows(1)), {})
        count = int(first.get("customers") or 0)
        sample: list[str] = []
        scanned = counted.scanned_bytes
        if body.sample:
            sampled = self.lake.run(
                audience_sql(body.rule, now=now, tables=self.tables, catalog=self.catalog)
                + f" LIMIT {int(body.sample)}"
            )
            sample = [row["customer_id"] or "" for row in sampled.rows(body.sample)]
            scanned += sampled.scanned_bytes
        return Preview(
            count=count, sample=sample, rule_text=describe(body.rule), evaluated_at=now, data_scanned_bytes=scanned
        )

    def build(self, segment_id: str) -> AudienceBuild:
        segment = self.store.get_segment(segment_id)
        if segment.rule is None:
            raise NotBuildable(f"segment {segment_id} is a static list: its members are the audience")
        build = self.start_build(segment, purpose="audience")
        segment.last_audience_id = build.audience_id
        self.store.update_segment(segment)
        return build

    def start_build(
        self, segment: Segment, *, purpose: Literal["audience", "membership"], at: datetime | None = None
    ) -> AudienceBuild:
        now = self.clock.now()
        build = AudienceBuild(
            audience_id=new_id("aud_"),
            segment_id=segment.segment_id,
            segment_version=segment.version,
            purpose=purpose,
            status="running",
            evaluated_at=at or now,
            shards=self.shards,
            created_at=now,
        )
        self.store.put_build(build)
        self.builds.start(build.audience_id, {"audience_id": build.audience_id})
        return build

    def audience(self, audience_id: str) -> AudienceBuild:
        return self.store.get_build(audience_id)

    def refresh_time_relative(self) -> list[AudienceBuild]:
        """Membership builds for dynamic segments whose rules depend on time passing (the schedule calls it)."""
        return [
            self.start_build(s, purpose="membership")
            for s in self.store.list_segments()
            if s.kind == "dynamic" and s.time_relative
        ]


class NotBuildable(EcrmError):
    status = 409
    code = "not-buildable"
    title = "The segment cannot be built"
