"""REST API of the analysis engine: segments, previews, audience builds, OLAP.

Marketers and analysts define segments and query OLAP; admins may do everything; agents read. Rules are validated in
two steps: their shape by the request model (a 422 naming the field), then against the field
catalogue and the saved segments (a 422 `invalid-rule` listing each problem with its path).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm import __version__
from ecrm.analysis.models import (
    AudienceBuild,
    OlapRequest,
    OlapResult,
    Preview,
    PreviewIn,
    Segment,
    SegmentIn,
    SegmentList,
)
from ecrm.analysis.olap import run_olap
from ecrm.analysis.segments import SegmentService
from ecrm.analysis.wiring import AnalysisConfig, segments_for
from ecrm.core.api import EngineApi
from ecrm.core.auth import Access
from ecrm.core.config import load_config
from ecrm.core.errors import InvalidInput
from ecrm.core.lake import QueryFailed
from ecrm.core.observability import Observability

config = load_config(AnalysisConfig)
obs = Observability(config)
app = EngineApi(obs.logger, title="eCRM analysis API", version=__version__)

SegmentId = Annotated[str, Path(pattern=r"^seg_[0-9A-Z]{26}$", description="A segment id")]
AudienceId = Annotated[str, Path(pattern=r"^aud_[0-9A-Z]{26}$", description="An audience build id")]
SEGMENT_EDITORS = ("admin", "marketer", "analyst")
ANALYSTS = ("admin", "analyst", "marketer")


@dataclass(frozen=True)
class Deps:
    segments: SegmentService


@cache
def default_deps() -> Deps:
    return Deps(segments_for(config))


def deps() -> Deps:
    return app.context["deps"]


@app.post(
    "/segments",
    access=Access.staff(*SEGMENT_EDITORS),
    summary="Save a segment; a dynamic one gets its members at once, then stays current (201)",
    status_code=201,
)
def create_segment(body: SegmentIn) -> tuple[Segment, int]:
    return deps().segments.create(body, actor=app.principal().actor), 201


@app.get("/segments", access=Access.staff(), summary="Every segment with its live member count")
def list_segments() -> SegmentList:
    return SegmentList(items=deps().segments.all())


@app.get(
    "/segments/<segment_id>", access=Access.staff(), summary="A segment: definition, rule in words, live member count"
)
def get_segment(segment_id: SegmentId) -> Segment:
    return deps().segments.get(segment_id)


@app.post(
    "/segments/preview",
    access=Access.staff(*SEGMENT_EDITORS),
    summary="Count and sample of a rule not yet saved, on the lake",
)
def preview_segment(body: PreviewIn) -> Preview:
    try:
        return deps().segments.preview(body)
    except QueryFailed as failed:
        raise InvalidInput(f"the lake could not evaluate the rule: {failed}") from failed


@app.post(
    "/segments/<segment_id>/build",
    access=Access.staff(*SEGMENT_EDITORS),
    summary="Build the segment's audience on the lake (202)",
    status_code=202,
)
def build_segment(segment_id: SegmentId) -> tuple[AudienceBuild, int]:
    return deps().segments.build(segment_id), 202


@app.get(
    "/audiences/<audience_id>", access=Access.staff(), summary="An audience build: status, count, manifest location"
)
def get_audience(audience_id: AudienceId) -> AudienceBuild:
    return deps().segments.audience(audience_id)


@app.post(
    "/analysis/olap",
    access=Access.staff(*ANALYSTS),
    summary="Measures by dimensions over customers' activity, from the lake",
)
def olap(body: OlapRequest) -> OlapResult:
    try:
        return run_olap(body, deps().segments.lake)
    except QueryFailed as failed:
        raise InvalidInput(f"the lake could not answer: {failed}") from failed


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: Deps | None = None) -> dict[str, Any]:
    app.append_context(deps=injected or default_deps())
    return app.resolve(event, context)
