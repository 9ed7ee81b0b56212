"""The artifact store against S3 (moto in process): versions, the latest pointer, immutability."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from ecrm.analysis.artifacts import ArtifactError, ArtifactExists, ArtifactNotFound, ArtifactStore, ModelArtifact
from moto import mock_aws

BUCKET = "ecrm-models"
TRAINED_AT = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    region = os.environ.get("AWS_DEFAULT_REGION", "eu-west-1")
    with mock_aws():
        client: Any = boto3.client("s3", region_name=region)
        if region == "us-east-1":  # the one region that refuses a location constraint
            client.create_bucket(Bucket=BUCKET)
        else:
            client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": region})
        yield client


@pytest.fixture
def store(s3: Any) -> ArtifactStore:
    return ArtifactStore(s3, BUCKET)


def _artifact(kind: str = "churn", hours: int = 0) -> ModelArtifact:
    return ModelArtifact.create(
        kind,  # type: ignore[arg-type]
        trained_at=TRAINED_AT + timedelta(hours=hours),
        parameters={"intercept": float(hours)},
        feature_names=["orders"],
        metrics={"roc_auc": 0.8},
    )


def test_put_then_get_latest_and_by_version(store: ArtifactStore, s3: Any) -> None:
    # Given two churn models stored in time order
    first, second = _artifact(hours=0), _artifact(hours=1)
    key = store.put(first)
    store.put(second)

    # Then both are kept under models/churn/, and latest is the second
    assert key == "models/churn/20260105T030000000Z.json"
    assert store.get("churn", first.version) == first
    assert store.latest("churn") == second
    assert store.versions("churn") == [first.version, second.version]
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="models/churn/")["Contents"]
    assert sorted(item["Key"] for item in listed) == [
        "models/churn/20260105T030000000Z.json",
        "models/churn/20260105T040000000Z.json",
        "models/churn/latest.json",
    ]
    assert s3.head_object(Bucket=BUCKET, Key=key)["ContentType"] == "application/json"


def test_kinds_are_kept_apart(store: ArtifactStore) -> None:
    store.put(_artifact("clusters"))

    assert store.latest("churn") is None
    assert store.versions("churn") == []
    assert store.versions("clusters") == ["20260105T030000000Z"]


def test_put_without_moving_latest(store: ArtifactStore) -> None:
    store.put(_artifact(hours=2))
    store.put(_artifact(hours=1), make_latest=False)

    latest = store.latest("churn")
    assert latest is not None
    assert latest.version == "20260105T050000000Z"


def test_a_version_is_never_overwritten(store: ArtifactStore) -> None:
    store.put(_artifact())

    with pytest.raises(ArtifactExists, match="already stored"):
        store.put(_artifact())


def test_missing_version_and_unknown_kind(store: ArtifactStore) -> None:
    with pytest.raises(ArtifactNotFound):
        store.get("churn", "20260105T030000000Z")
    with pytest.raises(ValueError, match="unknown model kind"):
        store.versions("pickles")
    with pytest.raises(ValueError, match="not an artifact version"):
        store.get("churn", "../secrets")


def test_a_tampered_document_is_refused(store: ArtifactStore, s3: Any) -> None:
    artifact = _artifact()
    key = store.put(artifact)
    s3.put_object(Bucket=BUCKET, Key=key, Body=artifact.to_json().replace('"churn"', '"clv"').encode())

    with pytest.raises(ArtifactError, match="holds clv"):
        store.get("churn", artifact.version)
