"""Model artifacts as JSON: what is written reads back equal, and what this code cannot vouch for is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from ecrm.analysis.artifacts import ArtifactError, ModelArtifact, artifact_version
from pydantic import ValidationError

TRAINED_AT = datetime(2026, 1, 5, 3, 4, 5, 678_000, tzinfo=UTC)


def _artifact(**changes: object) -> ModelArtifact:
    fields: dict[str, object] = {
        "trained_at": TRAINED_AT,
        "parameters": {"means": [0.5, 1.5], "intercept": -0.25, "transform": "signed_log1p"},
        "feature_names": ["orders", "recency_days"],
        "metrics": {"roc_auc": 0.81, "calibration": [{"count": 10, "observed_rate": 0.1}]},
        "data": {"source": "orders.csv", "customers": 1000},
    }
    fields.update(changes)
    return ModelArtifact.create("churn", **fields)  # type: ignore[arg-type]


def test_round_trip_is_equal() -> None:
    artifact = _artifact()

    assert ModelArtifact.from_json(artifact.to_json()) == artifact
    assert ModelArtifact.from_json(artifact.to_json().encode()) == artifact


def test_version_is_the_training_time_and_sorts_in_time_order() -> None:
    earlier = artifact_version(datetime(2026, 1, 5, 3, 4, 5, 999_000, tzinfo=UTC))
    later = artifact_version(datetime(2026, 1, 5, 4, 4, 5, tzinfo=timezone(timedelta(hours=1))) + timedelta(seconds=1))

    assert _artifact().version == "20260105T030405678Z"
    assert earlier < later == "20260105T030406000Z"  # another time zone is converted to UTC


def test_document_says_its_format_version() -> None:
    document = json.loads(_artifact().to_json())

    assert document["format_version"] == 1
    assert document["kind"] == "churn"
    assert document["parameters"]["means"] == [0.5, 1.5]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"format_version": 2}, "unknown artifact format version 2"),
        ({"kind": "neural-net"}, "unknown model kind 'neural-net'"),
        ({"version": "latest"}, "invalid model artifact"),
        ({"trained_at": "2026-01-05T03:04:05"}, "invalid model artifact"),  # no time zone
        ({"pickle": "gASVAAAA"}, "invalid model artifact"),  # unknown fields are not ignored
        ({"parameters": None}, "invalid model artifact"),
    ],
)
def test_refuses_what_it_cannot_vouch_for(change: dict[str, object], reason: str) -> None:
    document = json.loads(_artifact().to_json())
    document.update(change)

    with pytest.raises(ArtifactError, match=reason):
        ModelArtifact.from_json(json.dumps(document))


def test_refuses_non_json_and_non_objects() -> None:
    with pytest.raises(ArtifactError, match="not JSON"):
        ModelArtifact.from_json(b"\x80\x04\x95")  # the start of a pickle
    with pytest.raises(ArtifactError, match="JSON object"):
        ModelArtifact.from_json("[1, 2]")


def test_non_finite_numbers_are_refused_when_built() -> None:
    with pytest.raises(ValidationError, match="non-finite"):
        _artifact(parameters={"coefficients": [1.0, float("nan")]})
    with pytest.raises(ArtifactError, match="non-finite"):
        ModelArtifact.from_json(_artifact().to_json().replace("-0.25", "-Infinity"))
