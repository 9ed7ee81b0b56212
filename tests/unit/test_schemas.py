"""events/schemas is generated from the models, and a stale or orphan schema fails the build."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from ecrm_ops.schemas import SCHEMA_DIR, rendered_schemas, stale_schemas, write_schemas

from tests.samples import load_sample


def test_committed_schemas_match_the_models():
    # Then nothing under events/schemas differs from what the models generate (run `make schemas`)
    assert stale_schemas() == []


def test_every_registered_event_has_a_schema_file():
    assert set(rendered_schemas()) == {str(p.relative_to(SCHEMA_DIR)) for p in SCHEMA_DIR.rglob("*.json")}


def test_a_changed_or_orphan_schema_is_reported_and_rewritten(tmp_path: Path):
    # Given a schema directory with one edited schema and one orphan
    write_schemas(tmp_path)
    edited = next(tmp_path.rglob("*.json"))
    edited.write_text("{}")
    (tmp_path / "ecrm.gone").mkdir()
    (tmp_path / "ecrm.gone" / "ThingHappened.json").write_text("{}")

    # Then both are stale, and regenerating fixes both
    assert len(stale_schemas(tmp_path)) == 2
    write_schemas(tmp_path)
    assert stale_schemas(tmp_path) == []


def test_the_sample_event_validates_against_its_schema():
    # Given the sample PingRequested event as it travels on the bus
    event = load_sample("eventbridge/ping_requested.json")
    schema = json.loads((SCHEMA_DIR / "ecrm.platform" / "PingRequested.json").read_text())

    # Then its detail is valid against the published schema
    jsonschema.validate(event["detail"], schema)
