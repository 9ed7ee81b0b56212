"""`events/schemas/`: the JSON Schema of every domain event, generated from the pydantic models.

Every engine's `models` module is imported (`ecrm.core.events.load_all_event_models`, which the
runtime uses too) so each `DomainEvent` subclass registers itself; the schema of an event is its
envelope (`metadata` + `data`). `stale_schemas` is what the test and `ecrm schemas check` use to
fail when a model changed without regenerating.
"""

from __future__ import annotations

import json
from pathlib import Path

from ecrm.core.events import envelope_schema, load_all_event_models, registered_events

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "events" / "schemas"


def rendered_schemas() -> dict[str, str]:
    """Relative path -> file content, for every registered event."""
    load_all_event_models()
    files = {}
    for (source, detail_type), model in sorted(registered_events().items()):
        files[f"{source}/{detail_type}.json"] = json.dumps(envelope_schema(model), indent=2, sort_keys=True) + "\n"
    return files


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    written = []
    expected = rendered_schemas()
    for relative, content in expected.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != content:
            path.write_text(content)
            written.append(path)
    for path in directory.rglob("*.json"):
        if str(path.relative_to(directory)) not in expected:
            path.unlink()
            written.append(path)
    return written


def stale_schemas(directory: Path = SCHEMA_DIR) -> list[str]:
    expected = rendered_schemas()
    stale = [
        rel
        for rel, content in expected.items()
        if not (directory / rel).exists() or (directory / rel).read_text() != content
    ]
    stale += [
        str(p.relative_to(directory))
        for p in directory.rglob("*.json")
        if str(p.relative_to(directory)) not in expected
    ]
    return sorted(stale)
