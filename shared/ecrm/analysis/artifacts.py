"""Trained model artifacts: one versioned JSON document per model, and their store in S3.

A model's fitted state is plain numbers (coefficients, centroids, scales), so it is stored as
JSON and never pickled: loading a pickle runs whatever code it names, loading JSON only reads
numbers. Loading validates the document against the schema and refuses kinds and format
versions this code does not know, instead of guessing.

S3 layout: `models/<kind>/<version>.json` per artifact and `models/<kind>/latest.json`, a small
pointer to the newest one. A version is the training time, `YYYYMMDDTHHMMSSmmmZ` in UTC, so
versions sort in time order as plain strings.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from botocore.exceptions import ClientError
from pydantic import AwareDatetime, ConfigDict, Field, JsonValue, ValidationError, field_validator

from ecrm.core.contract import Contract

FORMAT_VERSION = 1
ArtifactKind = Literal["churn", "clusters", "clv", "rfm"]
ARTIFACT_KINDS: tuple[str, ...] = get_args(ArtifactKind)
VERSION_PATTERN = r"^\d{8}T\d{9}Z$"
_VERSION = re.compile(VERSION_PATTERN)
LATEST = "latest"


class ArtifactError(ValueError):
    """A document that is not a model artifact this code can read."""


class ArtifactNotFound(LookupError):
    pass


class ArtifactExists(RuntimeError):
    """Versions are immutable: a model once stored is what was scored with."""


def artifact_version(trained_at: datetime) -> str:
    """`20261123T101530123Z`: the training instant in UTC, to the millisecond."""
    utc = trained_at.astimezone(UTC)
    return utc.strftime("%Y%m%dT%H%M%S") + f"{utc.microsecond // 1000:03d}Z"


def _reject_non_finite(value: Any, where: str) -> None:
    """JSON has no NaN or infinity; a model holding one is broken, so it is refused when built, not when read."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where} holds a non-finite number ({value})")
    if isinstance(value, dict):
        for key, item in value.items():
            _reject_non_finite(item, f"{where}.{key}")
    elif isinstance(value, list):
        for position, item in enumerate(value):
            _reject_non_finite(item, f"{where}[{position}]")


class ModelArtifact(Contract):
    """A trained model, what it was trained on and how well it did."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: Literal[1] = 1
    kind: ArtifactKind
    version: str = Field(pattern=VERSION_PATTERN)
    trained_at: AwareDatetime
    metrics: dict[str, JsonValue] = Field(default_factory=dict)
    feature_names: list[str] = Field(default_factory=list)
    parameters: dict[str, JsonValue]
    data: dict[str, JsonValue] = Field(default_factory=dict)  # what it was trained on: source, dates, counts

    @field_validator("metrics", "parameters", "data")
    @classmethod
    def _finite(cls, value: dict[str, JsonValue]) -> dict[str, JsonValue]:
        _reject_non_finite(value, "artifact")
        return value

    @classmethod
    def create(
        cls,
        kind: ArtifactKind,
        *,
        trained_at: datetime,
        parameters: dict[str, Any],
        feature_names: list[str] | tuple[str, ...] = (),
        metrics: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
    ) -> ModelArtifact:
        return cls(
            kind=kind,
            version=artifact_version(trained_at),
            trained_at=trained_at,
            metrics=metrics or {},
            feature_names=list(feature_names),
            parameters=parameters,
            data=data or {},
        )

    def to_json(self) -> str:
        return self.model_dump_json(indent=1)

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelArtifact:
        """Parse and validate; an unknown kind or format version is refused with a readable reason."""
        try:
            document = json.loads(text)
        except ValueError as error:
            raise ArtifactError(f"not JSON: {error}") from None
        if not isinstance(document, dict):
            raise ArtifactError("a model artifact is a JSON object")
        if document.get("format_version") != FORMAT_VERSION:
            raise ArtifactError(
                f"unknown artifact format version {document.get('format_version')!r} (this code reads {FORMAT_VERSION})"
            )
        if document.get("kind") not in ARTIFACT_KINDS:
            raise ArtifactError(f"unknown model kind {document.get('kind')!r} (known: {', '.join(ARTIFACT_KINDS)})")
        try:
            return cls.model_validate(document)
        except ValidationError as error:
            raise ArtifactError(f"invalid model artifact: {error}") from None


class ArtifactStore:
    """Model artifacts in an S3 bucket (the client is injected, so tests and the local cloud pass theirs)."""

    def __init__(self, s3: Any, bucket: str, *, prefix: str = "models") -> None:
        self._s3 = s3
        self._bucket = bucket
        self._prefix = prefix.strip("/")

    def key(self, kind: str, version: str) -> str:
        _check_kind(kind)
        if version != LATEST and not _VERSION.match(version):
            raise ValueError(f"not an artifact version: {version!r}")
        return f"{self._prefix}/{kind}/{version}.json"

    def put(self, artifact: ModelArtifact, *, make_latest: bool = True) -> str:
        """Store a new version (never overwriting one), then point `latest` at it; returns the key."""
        key = self.key(artifact.kind, artifact.version)
        try:
            self._s3.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=artifact.to_json().encode(),
                ContentType="application/json",
                IfNoneMatch="*",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412"):
                raise ArtifactExists(f"{artifact.kind} version {artifact.version} is already stored") from None
            raise
        if make_latest:
            pointer = {"format_version": FORMAT_VERSION, "kind": artifact.kind, "version": artifact.version}
            self._s3.put_object(
                Bucket=self._bucket,
                Key=self.key(artifact.kind, LATEST),
                Body=json.dumps(pointer).encode(),
                ContentType="application/json",
            )
        return key

    def get(self, kind: str, version: str) -> ModelArtifact:
        artifact = ModelArtifact.from_json(self._read(self.key(kind, version)))
        if artifact.kind != kind or artifact.version != version:
            raise ArtifactError(f"{self.key(kind, version)} holds {artifact.kind} version {artifact.version}")
        return artifact

    def latest(self, kind: str) -> ModelArtifact | None:
        try:
            pointer = json.loads(self._read(self.key(kind, LATEST)))
        except ArtifactNotFound:
            return None
        if not isinstance(pointer, dict) or pointer.get("format_version") != FORMAT_VERSION:
            raise ArtifactError(f"unreadable latest pointer for {kind}")
        return self.get(kind, str(pointer.get("version")))

    def versions(self, kind: str) -> list[str]:
        """Every stored version of `kind`, oldest first."""
        prefix = f"{self._prefix}/{_check_kind(kind)}/"
        found = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                name = item["Key"][len(prefix) :].removesuffix(".json")
                if _VERSION.match(name):
                    found.append(name)
        return sorted(found)

    def _read(self, key: str) -> bytes:
        try:
            body: bytes = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise ArtifactNotFound(f"s3://{self._bucket}/{key} does not exist") from None
            raise
        return body


def _check_kind(kind: str) -> str:
    if kind not in ARTIFACT_KINDS:
        raise ValueError(f"unknown model kind {kind!r} (known: {', '.join(ARTIFACT_KINDS)})")
    return kind
