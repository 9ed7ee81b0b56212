"""The personalization engine's contract: its events (the offer models live in `offers`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from ecrm.core.erasure import CustomerDataErased
from ecrm.core.events import DomainEvent
from ecrm.personalization.offers import SOURCE, OfferAccepted, OfferCreated, OfferExhausted, OfferPresented

__all__ = [
    "ModelTrained",
    "OfferAccepted",
    "OfferCreated",
    "OfferExhausted",
    "OfferPresented",
    "PersonalizationDataErased",
]


class ModelTrained(DomainEvent):
    """The recommender was retrained: its version, how it did against popularity on held-out data, and whether
    it now serves requests (it does when it beats popularity, or when no model served before)."""

    source = SOURCE
    detail_type = "ModelTrained"

    model: str = Field(default="recommender", description="Which model of the engine")
    model_version: str = Field(description="The training instant, YYYYMMDDTHHMMSSmmmZ: versions sort by time")
    algorithm: str
    trained_at: datetime
    interactions: int
    customers: int
    items: int
    k: int = Field(description="The list length the metrics were computed at")
    metrics: dict[str, dict[str, float]] = Field(
        description="Held-out metrics per ranking, 'model' and 'popularity' (empty when the data were too few)"
    )
    activated: bool
    reason: str = Field(description="Why the version was or was not activated")
    artifact: str = Field(description="s3:// location of the full model JSON, kept for audit")


class PersonalizationDataErased(CustomerDataErased):
    """Personalization's acknowledgement of an erasure request, from this engine's source."""

    source = SOURCE
    detail_type = "CustomerDataErased"
