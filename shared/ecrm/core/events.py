"""The domain event contract: every event the platform emits, and its envelope.

On the bus an event is `source = "ecrm.<engine>"`, `detail-type = "<Resource><PastTenseVerb>"` and
`detail = {"metadata": {id, version, correlation_id, occurred_at}, "data": {...}}`. Each event is a
pydantic model subclassing `DomainEvent`; defining the class registers it, which is how
`events/schemas/` is generated and how consumers find the model for a detail-type.
"""

from __future__ import annotations

import importlib
import pkgutil
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from ecrm.core.clock import utc_now
from ecrm.core.contract import Contract
from ecrm.core.ids import new_id


class DomainEvent(Contract):
    """The `data` part of an event. Subclasses set `source`, `detail_type` and `version`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: ClassVar[str]
    detail_type: ClassVar[str]
    version: ClassVar[str] = "1"

    _registry: ClassVar[dict[tuple[str, str], type[DomainEvent]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        declares = "detail_type" in cls.__dict__ or "source" in cls.__dict__
        complete = isinstance(getattr(cls, "source", None), str) and isinstance(getattr(cls, "detail_type", None), str)
        if not (declares and complete):
            return  # an abstract intermediate class (e.g. a base fixing only the source)
        if not cls.source.startswith("ecrm."):
            raise TypeError(f"{cls.__name__}.source must start with 'ecrm.'")
        key = (cls.source, cls.detail_type)
        existing = DomainEvent._registry.get(key)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise TypeError(f"{key} is already registered by {existing.__qualname__}")
        DomainEvent._registry[key] = cls


def registered_events() -> dict[tuple[str, str], type[DomainEvent]]:
    """Every event class defined so far, keyed by (source, detail-type)."""
    return dict(DomainEvent._registry)


def load_all_event_models() -> None:
    """Import every engine's `models` module, so each of its events is registered.

    For a consumer that accepts an event from whatever engines the deployment has (the erasure
    acknowledgements), and for the schema generator of `events/schemas/`.
    """
    import ecrm

    for module in pkgutil.iter_modules(ecrm.__path__):
        if module.ispkg:
            try:
                importlib.import_module(f"ecrm.{module.name}.models")
            except ModuleNotFoundError as exc:
                if exc.name != f"ecrm.{module.name}.models":
                    raise


class EventMetadata(Contract):
    model_config = ConfigDict(frozen=True)

    id: str = Field(default_factory=lambda: new_id("evt_"))
    version: str = "1"
    correlation_id: str = Field(default_factory=lambda: new_id("cor_"))
    occurred_at: datetime = Field(default_factory=utc_now)


DataT = TypeVar("DataT", bound=BaseModel)


class EventEnvelope(Contract, Generic[DataT]):
    """What travels in the EventBridge `detail` field."""

    metadata: EventMetadata
    data: DataT


def envelope_for(
    event: DomainEvent, correlation_id: str | None = None, occurred_at: datetime | None = None
) -> dict[str, Any]:
    """The JSON-ready detail of `event`."""
    metadata = EventMetadata(
        version=event.version,
        **({"correlation_id": correlation_id} if correlation_id else {}),
        **({"occurred_at": occurred_at} if occurred_at else {}),
    )
    return {"metadata": metadata.model_dump(mode="json"), "data": event.model_dump(mode="json")}


def envelope_schema(event_cls: type[DomainEvent]) -> dict[str, Any]:
    """The JSON Schema of the detail of `event_cls`, as published under `events/schemas/`."""
    schema = EventEnvelope[event_cls].model_json_schema()  # type: ignore[valid-type]
    schema["title"] = event_cls.detail_type
    schema["$id"] = f"https://ecrm.dev/events/{event_cls.source}/{event_cls.detail_type}.v{event_cls.version}.json"
    schema["x-ecrm-source"] = event_cls.source
    schema["x-ecrm-detail-type"] = event_cls.detail_type
    schema["x-ecrm-version"] = event_cls.version
    if event_cls.__doc__:
        schema["description"] = " ".join(event_cls.__doc__.split())
    return schema
