"""The API's one OpenAPI document, merged from the documents each engine's resolver generates.

Each engine's function serves its own routes, so Powertools generates one document per engine; clients,
the console's typed client and fuzzers need one. `merge_documents` builds it, deterministically (the same
engines give the same bytes, so the committed copy can be checked for staleness):

- paths and operations of every engine, each tagged with its engine; an operation id two engines share
  is prefixed with the engine's name;
- component schemas: one definition per name when the engines agree on it; when two engines define
  different schemas under one name, every engine's copy is renamed `<Engine><Name>` and its `$ref`s
  follow, so no engine's schema silently replaces another's;
- security: the Cognito authorizer as the `cognito` scheme (the raw ID token in `Authorization`, as API
  Gateway's Cognito authorizer reads it); an operation whose `x-ecrm-access` is not public requires it,
  a public one says so with an empty requirement;
- pydantic's JSON Schema said as pydantic validates: a dict whose keys must match a pattern
  (`patternProperties` alone) takes no other key (`additionalProperties: false`), where JSON Schema
  alone would let any other key through; clients and fuzzers then build bodies the API accepts;
- errors as the API answers them, RFC 9457 problem+json: Powertools' FastAPI-style `422` model is
  replaced by the validation problem `ecrm.core.api` sends, protected operations document their
  401 and 403, and `default` is a problem for every other status.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from typing import Any

from ecrm.core.auth import ACCESS_EXTENSION
from ecrm.core.errors import PROBLEM_CONTENT_TYPE

SECURITY_SCHEME = "cognito"
SCHEMA_REF = "#/components/schemas/"
RESPONSE_REF = "#/components/responses/"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# What Powertools adds for FastAPI-style validation answers; ecrm.core.api answers problems instead.
POWERTOOLS_ERROR_SCHEMAS = frozenset({"HTTPValidationError", "ValidationError", "ResponseValidationError"})

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem document; `code` names the problem for programs.",
    "type": "object",
    "properties": {
        "type": {"type": "string", "description": "A URI naming the problem type"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 100, "maximum": 599},
        "detail": {"type": "string", "description": "What is wrong, for a person"},
        "instance": {"type": "string"},
        "code": {"type": "string"},
    },
    "required": ["type", "title"],
    "additionalProperties": True,
}
VALIDATION_PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "ValidationProblem",
    "description": "A 422 problem listing each invalid part of the request.",
    "allOf": [
        {"$ref": f"{SCHEMA_REF}Problem"},
        {
            "type": "object",
            "properties": {
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "description": (
                            "One problem: where (`in` and `field` for a request's shape; `path` inside a "
                            "segment rule) and what (`message`)"
                        ),
                        "properties": {
                            "in": {"type": "string", "description": "body, path, query or header"},
                            "field": {"type": "string"},
                            "path": {"type": "string", "description": "Where in a segment rule"},
                            "message": {"type": "string"},
                        },
                        "required": ["message"],
                    },
                }
            },
        },
    ],
}
SECURITY_SCHEMES: dict[str, Any] = {
    SECURITY_SCHEME: {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": (
            "A Cognito user pool ID token, as is (no `Bearer` prefix). Staff tokens carry their groups "
            "(admin, marketer, analyst, agent) in `cognito:groups`; a customer's carries `custom:customer_id`. "
            "Which callers an operation admits is its `x-ecrm-access`."
        ),
        "x-amazon-apigateway-authtype": "cognito_user_pools",
    }
}


def _problem_response(description: str, schema: str = "Problem") -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": SCHEMA_REF + schema}}}}


RESPONSES: dict[str, Any] = {
    "Unauthorized": _problem_response("No valid token (answered by API Gateway's Cognito authorizer or the function)"),
    "Forbidden": _problem_response("The token's caller may not call this operation (see `x-ecrm-access`)"),
    "ValidationProblem": _problem_response("The request's parameters or body are invalid", "ValidationProblem"),
    "Problem": _problem_response("Any other answer than the operation's success: a problem document"),
}


def merge_documents(
    documents: Mapping[str, Mapping[str, Any]], *, title: str, version: str, description: str = ""
) -> dict[str, Any]:
    """One document from each engine's generated document (engine name -> document)."""
    engines = sorted(documents)
    renames = _schema_renames({engine: documents[engine] for engine in engines})
    schemas: dict[str, Any] = {"Problem": PROBLEM_SCHEMA, "ValidationProblem": VALIDATION_PROBLEM_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    operation_ids: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for engine in engines:
        document = _rename_refs(copy.deepcopy(dict(documents[engine])), renames.get(engine, {}))
        _close_pattern_keyed_objects(document)
        for name, schema in (document.get("components", {}).get("schemas") or {}).items():
            if name not in POWERTOOLS_ERROR_SCHEMAS:
                schemas[renames.get(engine, {}).get(name, name)] = schema
        for path, item in (document.get("paths") or {}).items():
            merged_item = paths.setdefault(path, {})
            for method, operation in item.items():
                if method not in HTTP_METHODS:
                    continue
                if method in merged_item:
                    raise ValueError(f"{method.upper()} {path} is served by two engines")
                merged_item[method] = _operation(engine, operation)
                operation_ids.setdefault(merged_item[method]["operationId"], []).append((engine, merged_item[method]))
    for operation_id, holders in operation_ids.items():
        if len(holders) > 1:
            for engine, operation in holders:
                operation["operationId"] = f"{engine}_{operation_id}"
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, **({"description": description} if description else {})},
        "servers": [{"url": "/"}],
        "tags": [{"name": engine} for engine in engines],
        "paths": {path: dict(sorted(paths[path].items())) for path in sorted(paths)},
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "responses": RESPONSES,
            "securitySchemes": SECURITY_SCHEMES,
        },
    }
    _require_resolvable(merged)
    return merged


def operations(document: Mapping[str, Any]) -> Iterable[tuple[str, str, dict[str, Any]]]:
    """(METHOD, path, operation) for every operation of a document, in the document's order."""
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield method.upper(), path, operation


def render(document: Mapping[str, Any]) -> str:
    """The document as committed and served: stable key order, two-space indent, one final newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# -- merging ---------------------------------------------------------------------------------------
def _schema_renames(documents: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """engine -> {schema name -> its name in the merged document}, for names engines define differently."""
    definitions: dict[str, dict[str, str]] = {}  # name -> engine -> canonical JSON
    for engine, document in documents.items():
        for name, schema in (document.get("components", {}).get("schemas") or {}).items():
            definitions.setdefault(name, {})[engine] = json.dumps(schema, sort_keys=True)
    renames: dict[str, dict[str, str]] = {}
    taken = set(definitions) | {"Problem", "ValidationProblem"}
    for name, by_engine in sorted(definitions.items()):
        if len(set(by_engine.values())) > 1:
            for engine in sorted(by_engine):
                renamed = _engine_prefix(engine) + name
                if renamed in taken:
                    raise ValueError(f"cannot rename {engine}'s {name}: {renamed} exists")
                taken.add(renamed)
                renames.setdefault(engine, {})[name] = renamed
    return renames


def _engine_prefix(engine: str) -> str:
    return "".join(part.capitalize() for part in engine.replace("-", "_").split("_"))


def _rename_refs(node: Any, renames: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(SCHEMA_REF):
            name = ref.removeprefix(SCHEMA_REF)
            node["$ref"] = SCHEMA_REF + renames.get(name, name)
        for value in node.values():
            _rename_refs(value, renames)
    elif isinstance(node, list):
        for value in node:
            _rename_refs(value, renames)
    return node


def _close_pattern_keyed_objects(node: Any) -> None:
    if isinstance(node, dict):
        if "patternProperties" in node and "properties" not in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _close_pattern_keyed_objects(value)
    elif isinstance(node, list):
        for value in node:
            _close_pattern_keyed_objects(value)


def _operation(engine: str, operation: dict[str, Any]) -> dict[str, Any]:
    access = operation.get(ACCESS_EXTENSION)
    if not access:
        raise ValueError(f"operation {operation.get('operationId')} of {engine} declares no access")
    responses: dict[str, Any] = {}
    for status, response in operation.get("responses", {}).items():
        if status == "422":
            continue  # Powertools' FastAPI-style model: replaced below
        responses[str(status)] = response
    protected = access["audience"] != "public"
    if protected:
        responses["401"] = {"$ref": RESPONSE_REF + "Unauthorized"}
        responses["403"] = {"$ref": RESPONSE_REF + "Forbidden"}
    responses["422"] = {"$ref": RESPONSE_REF + "ValidationProblem"}
    responses["default"] = {"$ref": RESPONSE_REF + "Problem"}
    merged = {key: value for key, value in operation.items() if key != "responses"}
    merged["tags"] = [engine]
    merged["security"] = [{SECURITY_SCHEME: []}] if protected else []
    merged["responses"] = responses
    return merged


def _require_resolvable(document: Mapping[str, Any]) -> None:
    """Every `$ref` names a component of the document (a rename that missed one would be a broken link)."""
    components = document["components"]
    missing = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                kind, _, name = ref.removeprefix("#/components/").partition("/")
                if name not in components.get(kind, {}):
                    missing.add(ref)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    if missing:
        raise ValueError(f"unresolved references: {', '.join(sorted(missing))}")
