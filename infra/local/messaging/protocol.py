"""AWS's wire protocols for the emulated messaging services, driven by botocore's service models.

A request is read as the service reads it (`json`: the `X-Amz-Target` header names the operation
and the body is the input structure; `rest-json`: the method and path name it, members come from
the path, the query string, headers and the body, as each member's `location` says), converted to
Python values by its shapes (blobs base64-decoded, timestamps as datetimes) and validated against
the model's constraints as the service validates them: required members, types, `min`/`max`
(lengths, sizes and ranges), enums and patterns (Smithy patterns are not anchored: `re.search`).
A request that fails is refused with the service's own `ValidationException`. Outputs are
checked against the output shape before they are written, so an emulation that forgets a
required member fails loudly instead of handing boto3 a response AWS would never send.

Nothing here knows an operation: the shapes are botocore's.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.parse
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape, StructureShape

Handler = Callable[[dict[str, Any], "RequestContext"], dict[str, Any]]

_session = botocore.session.get_session()


def service_model(name: str) -> ServiceModel:
    return _session.get_service_model(name)


class ServiceError(Exception):
    """An error the service answers with: its code (the model's error shape), message and members."""

    def __init__(self, code: str, message: str, *, status: int = 400, **members: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.members = {k: v for k, v in members.items() if v is not None}


class RequestContext:
    """Who called and where: the account and region of the request's SigV4 credential scope."""

    def __init__(self, account: str, region: str, request_id: str) -> None:
        self.account = account
        self.region = region
        self.request_id = request_id


# -- validation ----------------------------------------------------------------------------------
class _Problems:
    def __init__(self) -> None:
        self.items: list[tuple[str, str, str]] = []  # (member path, value text, constraint)

    def add(self, path: str, value: Any, constraint: str) -> None:
        self.items.append((path, _value_text(value), constraint))


def _value_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bytes):
        return "'<blob>'"
    if isinstance(value, str):
        return f"'{value}'"
    return f"'{json.dumps(value, default=str)}'"


def _lower_camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def validate(shape: Shape, value: Any, path: str, problems: _Problems) -> None:
    """Check `value` against `shape` and its constraints, recording each problem once."""
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        if not isinstance(value, dict):
            problems.add(path, value, "Member must be a structure")
            return
        assert isinstance(shape, StructureShape)
        for name in shape.required_members:
            if value.get(name) is None:
                problems.add(_join(path, name), None, "Member must not be null")
        for name, member in shape.members.items():
            if value.get(name) is not None:
                validate(member, value[name], _join(path, name), problems)
        return
    if kind == "list":
        if not isinstance(value, list):
            problems.add(path, value, "Member must be a list")
            return
        _size(len(value), meta, path, value, problems, "length")
        for index, item in enumerate(value):
            validate(shape.member, item, f"{path}.{index + 1}.member", problems)  # type: ignore[attr-defined]
        return
    if kind == "map":
        if not isinstance(value, dict):
            problems.add(path, value, "Member must be a map")
            return
        _size(len(value), meta, path, value, problems, "length")
        for key, item in value.items():
            validate(shape.key, key, f"{path}.key", problems)  # type: ignore[attr-defined]
            validate(shape.value, item, f"{path}.{key}", problems)  # type: ignore[attr-defined]
        return
    if kind == "string":
        if not isinstance(value, str):
            problems.add(path, value, "Member must be a string")
            return
        _size(len(value), meta, path, value, problems, "length")
        enum = getattr(shape, "enum", None) or []
        if enum and value not in enum:
            problems.add(path, value, f"Member must satisfy enum value set: [{', '.join(enum)}]")
        pattern = meta.get("pattern")
        if pattern and not _pattern(pattern).search(value):
            problems.add(path, value, f"Member must satisfy regular expression pattern: {pattern}")
        return
    if kind in {"integer", "long"}:
        if isinstance(value, bool) or not isinstance(value, int):
            problems.add(path, value, "Member must be an integer")
            return
        _range(value, meta, path, problems)
        return
    if kind in {"float", "double"}:
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.add(path, value, "Member must be a number")
            return
        _range(value, meta, path, problems)
        return
    if kind == "boolean":
        if not isinstance(value, bool):
            problems.add(path, value, "Member must be a boolean")
        return
    if kind == "blob":
        if not isinstance(value, bytes | bytearray):
            problems.add(path, value, "Member must be a blob")
            return
        _size(len(value), meta, path, value, problems, "length")
        return
    if kind == "timestamp" and not isinstance(value, datetime):
        problems.add(path, value, "Member must be a timestamp")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _size(size: int, meta: dict[str, Any], path: str, value: Any, problems: _Problems, what: str) -> None:
    if "min" in meta and size < meta["min"]:
        problems.add(path, value, f"Member must have {what} greater than or equal to {meta['min']}")
    if "max" in meta and size > meta["max"]:
        problems.add(path, value, f"Member must have {what} less than or equal to {meta['max']}")


def _range(number: float, meta: dict[str, Any], path: str, problems: _Problems) -> None:
    if "min" in meta and number < meta["min"]:
        problems.add(path, number, f"Member must have value greater than or equal to {meta['min']}")
    if "max" in meta and number > meta["max"]:
        problems.add(path, number, f"Member must have value less than or equal to {meta['max']}")


_patterns: dict[str, re.Pattern[str]] = {}


def _pattern(pattern: str) -> re.Pattern[str]:
    if pattern not in _patterns:
        _patterns[pattern] = re.compile(pattern)
    return _patterns[pattern]


def validation_error(problems: _Problems, *, style: str) -> ServiceError:
    """The service's ValidationException for `problems` (AWS's wording: 'N validation error(s) detected')."""
    count = len(problems.items)
    details = "; ".join(
        f"Value {value} at '{'.'.join(_lower_camel(p) for p in path.split('.'))}' failed to satisfy constraint: {rule}"
        for path, value, rule in problems.items
    )
    message = f"{count} validation error{'s' if count > 1 else ''} detected: {details}"
    if style == "json":  # pinpoint-sms-voice-v2: Reason and Fields, as its model declares them
        fields = [{"Name": path, "Message": rule} for path, _, rule in problems.items]
        return ServiceError("ValidationException", message, Reason="FIELD_VALIDATION_FAILED", Fields=fields)
    return ServiceError("ValidationException", message)


# -- converting between wire and Python values ---------------------------------------------------
def from_wire(shape: Shape, value: Any) -> Any:
    """A JSON value as the Python value of `shape` (what boto3 would have been given)."""
    if value is None:
        return None
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        assert isinstance(shape, StructureShape)
        out = {}
        for name, member in shape.members.items():
            key = member.serialization.get("name", name)
            if key in value:
                out[name] = from_wire(member, value[key])
        return out
    if kind == "list" and isinstance(value, list):
        return [from_wire(shape.member, item) for item in value]  # type: ignore[attr-defined]
    if kind == "map" and isinstance(value, dict):
        return {k: from_wire(shape.value, v) for k, v in value.items()}  # type: ignore[attr-defined]
    if kind == "blob" and isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return value  # validation names it
    if kind == "timestamp" and isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    return value


def to_wire(shape: Shape, value: Any) -> Any:
    """A Python value of `shape` as the service writes it in JSON."""
    if value is None:
        return None
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        out = {}
        for name, member in shape.members.items():
            if value.get(name) is not None and member.serialization.get("location") is None:
                out[member.serialization.get("name", name)] = to_wire(member, value[name])
        return out
    if kind == "list":
        return [to_wire(shape.member, item) for item in value]  # type: ignore[attr-defined]
    if kind == "map":
        return {k: to_wire(shape.value, v) for k, v in value.items()}  # type: ignore[attr-defined]
    if kind == "blob":
        return base64.b64encode(value).decode()
    if kind == "timestamp":
        return value.timestamp()
    return value


def _query_value(shape: Shape, raw: list[str]) -> Any:
    if shape.type_name == "list":
        return [_scalar(shape.member, item) for item in raw]  # type: ignore[attr-defined]
    return _scalar(shape, raw[0])


def _scalar(shape: Shape, raw: str) -> Any:
    kind = shape.type_name
    try:
        if kind in {"integer", "long"}:
            return int(raw)
        if kind in {"float", "double"}:
            return float(raw)
    except ValueError:
        return raw  # validation names it
    if kind == "boolean":
        return raw.lower() == "true" if raw.lower() in {"true", "false"} else raw
    return raw


# -- the WSGI application of one service ---------------------------------------------------------
class ServiceApp:
    """One emulated AWS service: the model's operations, each answered by a handler or refused."""

    def __init__(self, service: str, handlers: dict[str, Handler]) -> None:
        self.model = service_model(service)
        self.protocol = self.model.protocol
        unknown = set(handlers) - set(self.model.operation_names)
        if unknown:
            raise ValueError(f"{service} has no operation {sorted(unknown)}")
        self.handlers = handlers
        self._routes = [
            (self.model.operation_model(name), _uri_pattern(self.model.operation_model(name).http["requestUri"]))
            for name in self.model.operation_names
        ]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request_id = str(uuid.uuid4())
        try:
            operation, params = self._read(environ)
            handler = self.handlers.get(operation.name)
            if handler is None:
                raise ServiceError(
                    "ValidationException" if self.protocol == "rest-json" else "UnknownOperationException",
                    f"The local cloud does not emulate {self.model.service_name} {operation.name}",
                )
            context = RequestContext(*_account_and_region(environ), request_id)
            result = handler(params, context)
            problems = _Problems()
            validate(operation.output_shape, result, "", problems) if operation.output_shape else None
            if problems.items:
                raise ServiceError(
                    "InternalServerException" if self.protocol == "json" else "InternalServiceException",
                    f"the local emulation of {operation.name} answered outside its model: {problems.items}",
                    status=500,
                )
            body = to_wire(operation.output_shape, result) if operation.output_shape else {}
            return self._respond(start_response, operation.http.get("responseCode", 200), body, request_id)
        except ServiceError as error:
            return self._error(start_response, error, request_id)

    def _read(self, environ: dict[str, Any]) -> tuple[OperationModel, dict[str, Any]]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            document = json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            raise ServiceError("SerializationException", f"The request body is not JSON: {exc}") from None
        if self.protocol == "json":
            target = environ.get("HTTP_X_AMZ_TARGET", "")
            prefix, _, name = target.partition(".")
            if prefix != self.model.metadata["targetPrefix"] or name not in self.model.operation_names:
                raise ServiceError("UnknownOperationException", f"Unknown operation {target!r}")
            operation = self.model.operation_model(name)
            params = from_wire(operation.input_shape, document) if operation.input_shape else {}
        else:
            operation, labels = self._route(environ)
            params = self._rest_params(operation, environ, labels, document)
        if operation.input_shape is not None:
            problems = _Problems()
            validate(operation.input_shape, params, "", problems)
            if problems.items:
                raise validation_error(problems, style=self.protocol)
        return operation, params

    def _route(self, environ: dict[str, Any]) -> tuple[OperationModel, dict[str, str]]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        for operation, pattern in self._routes:
            match = pattern.fullmatch(path)
            if match and operation.http["method"] == method:
                return operation, {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
        raise ServiceError("ResourceNotFoundException", f"No operation at {method} {path}", status=404)

    @staticmethod
    def _rest_params(
        operation: OperationModel, environ: dict[str, Any], labels: dict[str, str], document: Any
    ) -> dict[str, Any]:
        shape = operation.input_shape
        if shape is None:
            return {}
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        params: dict[str, Any] = {}
        body = document if isinstance(document, dict) else {}
        for name, member in shape.members.items():
            location = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if location == "uri" and wire in labels:
                params[name] = _scalar(member, labels[wire])
            elif location == "querystring" and wire in query:
                params[name] = _query_value(member, query[wire])
            elif location == "header":
                header = environ.get("HTTP_" + wire.upper().replace("-", "_"))
                if header is not None:
                    params[name] = _scalar(member, header)
            elif location is None and wire in body:
                params[name] = from_wire(member, body[wire])
        return params

    def _respond(self, start_response: Callable[..., Any], status: int, body: Any, request_id: str) -> list[bytes]:
        payload = json.dumps(body).encode()
        content_type = "application/x-amz-json-1.0" if self.protocol == "json" else "application/json"
        start_response(
            f"{status} OK",
            [
                ("Content-Type", content_type),
                ("Content-Length", str(len(payload))),
                ("x-amzn-RequestId", request_id),
            ],
        )
        return [payload]

    def _error(self, start_response: Callable[..., Any], error: ServiceError, request_id: str) -> list[bytes]:
        if self.protocol == "json":
            body: dict[str, Any] = {"__type": error.code, "Message": error.message, **error.members}
        else:
            body = {"message": error.message, **error.members}
        status = error.status
        if self.protocol == "rest-json":
            declared = next((s for s in self.model.error_shapes if s.name == error.code), None)
            status = declared.metadata.get("error", {}).get("httpStatusCode", status) if declared else status
        payload = json.dumps(body).encode()
        start_response(
            f"{status} ERROR",
            [
                ("Content-Type", "application/x-amz-json-1.0" if self.protocol == "json" else "application/json"),
                ("Content-Length", str(len(payload))),
                ("x-amzn-RequestId", request_id),
                ("x-amzn-ErrorType", error.code),
            ],
        )
        return [payload]


def _uri_pattern(uri: str) -> re.Pattern[str]:
    path = uri.split("?", 1)[0]
    out, position = [], 0
    for match in re.finditer(r"\{([^}+]+)(\+?)\}", path):
        out.append(re.escape(path[position : match.start()]))
        out.append(f"(?P<{match.group(1)}>{'.+' if match.group(2) else '[^/]+'})")
        position = match.end()
    out.append(re.escape(path[position:]))
    return re.compile("".join(out))


def credential_scope_service(environ: dict[str, Any]) -> str | None:
    """The service a SigV4-signed request is for (`sms-voice`, `social-messaging`, ...), if signed."""
    scope = _credential_scope(environ)
    return scope[3] if scope else None


def _credential_scope(environ: dict[str, Any]) -> list[str] | None:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    match = re.search(r"Credential=([^,\s]+)", auth)
    if not match:
        return None
    parts = match.group(1).split("/")
    return parts if len(parts) == 5 else None


def _account_and_region(environ: dict[str, Any]) -> tuple[str, str]:
    """The caller's account as moto reckons it (MOTO_ACCOUNT_ID, the x-moto-account-id header, else
    moto's default) and the region of the credential scope."""
    import os

    from moto.core import DEFAULT_ACCOUNT_ID

    scope = _credential_scope(environ)
    region = scope[2] if scope else "us-east-1"
    account = os.environ.get("MOTO_ACCOUNT_ID") or environ.get("HTTP_X_MOTO_ACCOUNT_ID") or DEFAULT_ACCOUNT_ID
    return account, region
