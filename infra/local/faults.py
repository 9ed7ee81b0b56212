"""Faults on demand in the local cloud: AWS calls that fail as AWS fails them, and functions that crash.

A spec (`ecrm local up --faults SPEC`, `LocalCloud(faults=SPEC)`, or `cloud.faults.load(SPEC)` in a
test) is a comma-separated list of rules and an optional seed:

    RULE   := SERVICE ':' OPERATION '=' FAULT [ '@' RATE | '#' N ]
    FAULT  := throttle | error | unavailable | timeout[:SECONDS] | drop
    RULE   := 'lambda:' FUNCTION '=' crash [ '@after:' CALLS ] [ '@' RATE | '#' N ]
    ITEM   := RULE | 'seed=' INT

SERVICE is the boto3 client's name (`sesv2`, `dynamodb`, `sqs`, `events`, ...), OPERATION the API's
operation name (`SendEmail`) or `*`. Without a selector every call is hit; `@0.33` hits exactly 33
calls in each hundred of that rule's calls, at seeded random places (so a test can assert the
share); `#3` hits the rule's third call only. The faults:

- `throttle`: the service's own throttling error, as botocore's retry logic recognises it (SES v2
  `TooManyRequestsException` 429, DynamoDB `ProvisionedThroughputExceededException` 400, SQS
  `RequestThrottled`, EventBridge `ThrottlingException`, S3 `SlowDown` 503, ...);
- `error`: a 500 (`InternalFailure`, or the service's modeled internal error); `unavailable`: a 503;
- `timeout[:SECONDS]`: the request is held SECONDS (61 by default, past botocore's 60 s read
  timeout), then applied and answered, by when the client has usually given up and retried;
- `drop`: the request is applied, then the connection is closed without an answer;
- `crash` (functions only, FUNCTION a prefix of the function's logical id): the invocation's
  sandbox exits after CALLS AWS calls (or at a seeded random point among its first ten without
  `@after:`), at the latest when the handler returns; Lambda reports `Runtime.ExitError` and the
  caller (an event source, Step Functions) retries as it would in AWS. RATE and N count invocations.

Every fault injected is logged with what it hit (service, operation, the rule's call number, the
fault) in `FaultPlan.records` and as a JSON line in `<state dir>/faults.jsonl`.

Faults sit in front of the whole moto server (`install` wraps the WSGI application the server
runs, whatever answers behind it) and in the function runtime (`crash_point`).
"""

from __future__ import annotations

import json
import random
import re
import socket
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

KINDS = ("throttle", "error", "unavailable", "timeout", "drop", "crash")
DEFAULT_TIMEOUT_S = 61.0  # botocore's read timeout is 60 s
BLOCK = 100  # a rate hits exactly round(rate * 100) calls of each hundred
RANDOM_CRASH_CALLS = 10
_RULE = re.compile(
    r"^(?P<service>[a-z0-9-]+):(?P<target>[A-Za-z0-9*_-]+)="
    r"(?P<kind>[a-z]+)(?::(?P<seconds>\d+(?:\.\d+)?))?(?:@after:(?P<after>\d+))?"
    r"(?:@(?P<rate>\d*\.?\d+)|#(?P<nth>\d+))?$"
)


class FaultSpecError(ValueError):
    """A spec that cannot be read; the message says which part and why, in one line."""


@dataclass(frozen=True)
class FaultRule:
    service: str
    target: str  # an operation name or `*`; for `crash`, a prefix of the function's logical id
    kind: str
    text: str
    seconds: float = DEFAULT_TIMEOUT_S
    after: int | None = None  # crash: after this many AWS calls
    rate: float | None = None
    nth: int | None = None

    def matches(self, service: str, operation: str) -> bool:
        if self.kind == "crash":
            return service == "lambda-function" and operation.startswith(self.target)
        return service == self.service and self.target in ("*", operation)


@dataclass(frozen=True)
class FaultRecord:
    service: str
    operation: str
    call: int  # the call (or invocation) number, counted per rule
    fault: str
    rule: str
    at: float = field(default_factory=time.time)


def parse(spec: str) -> tuple[list[FaultRule], int]:
    """The rules and seed of a spec; `FaultSpecError` names the part that is wrong."""
    rules: list[FaultRule] = []
    seed = 0
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if part.startswith("seed="):
            if not part[5:].isdigit():
                raise FaultSpecError(f"fault spec {part!r}: the seed is a whole number (seed=7)")
            seed = int(part[5:])
            continue
        found = _RULE.match(part)
        if found is None:
            raise FaultSpecError(
                f"fault spec {part!r}: expected SERVICE:OPERATION=FAULT[@RATE|#N] (sesv2:SendEmail=throttle@0.33)"
            )
        values = found.groupdict()
        kind, service, target = values["kind"], values["service"], values["target"]
        if kind not in KINDS:
            raise FaultSpecError(f"fault spec {part!r}: unknown fault {kind!r} (one of {', '.join(KINDS)})")
        if kind == "crash" and (service != "lambda" or target == "*"):
            raise FaultSpecError(f"fault spec {part!r}: crash takes lambda:<function logical id prefix>")
        if values["seconds"] is not None and kind != "timeout":
            raise FaultSpecError(f"fault spec {part!r}: only timeout takes :SECONDS")
        if values["after"] is not None and kind != "crash":
            raise FaultSpecError(f"fault spec {part!r}: only crash takes @after:CALLS")
        if kind != "crash":
            _check_operation(part, service, target)
        rate = float(values["rate"]) if values["rate"] is not None else None
        if rate is not None and not 0 < rate <= 1:
            raise FaultSpecError(f"fault spec {part!r}: the rate is a share of calls, above 0 and at most 1")
        nth = int(values["nth"]) if values["nth"] is not None else None
        if nth == 0:
            raise FaultSpecError(f"fault spec {part!r}: calls are counted from 1")
        rules.append(
            FaultRule(
                service=service,
                target=target,
                kind=kind,
                text=part,
                seconds=float(values["seconds"]) if values["seconds"] else DEFAULT_TIMEOUT_S,
                after=int(values["after"]) if values["after"] is not None else None,
                rate=rate,
                nth=nth,
            )
        )
    return rules, seed


def _check_operation(part: str, service: str, operation: str) -> None:
    try:
        model = _service_model(service)
    except Exception:
        raise FaultSpecError(f"fault spec {part!r}: {service!r} is not a boto3 service name") from None
    if operation != "*" and operation not in model.operation_names:
        raise FaultSpecError(f"fault spec {part!r}: {service} has no operation {operation!r}")


@cache
def _service_model(service: str) -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


class FaultPlan:
    """The faults in force (none until `load`), their counters and what they hit; thread-safe."""

    def __init__(self, spec: str = "", *, log_path: Path | None = None) -> None:
        self.log_path = log_path
        self.records: list[FaultRecord] = []
        self._lock = threading.Lock()
        self.load(spec)

    def load(self, spec: str) -> FaultPlan:
        """Put the spec's faults in force (replacing any), counting calls from zero."""
        rules, seed = parse(spec)
        with self._lock:
            self.spec, self.rules, self.seed = spec, rules, seed
            self._calls = [0] * len(rules)
            self._randoms = [random.Random(f"{seed}:{i}:{rule.text}") for i, rule in enumerate(rules)]  # noqa: S311
            self._blocks: list[set[int]] = [set() for _ in rules]
            self.services = {rule.service for rule in rules if rule.kind != "crash"}
        return self

    def clear(self) -> None:
        self.load("")

    def __bool__(self) -> bool:
        return bool(self.rules)

    def decide(self, service: str, operation: str) -> tuple[FaultRule, int] | None:
        """The rule that hits this call, if any (each matching rule counts the call), and its call number."""
        hit = self._decide(service, operation)
        if hit is None:
            return None
        rule, call, _ = hit
        if rule.kind != "crash":
            self.record(
                service, operation, call, f"timeout:{rule.seconds:g}" if rule.kind == "timeout" else rule.kind, rule
            )
        return rule, call

    def _decide(self, service: str, operation: str) -> tuple[FaultRule, int, int] | None:
        hit: tuple[FaultRule, int, int] | None = None
        with self._lock:
            for index, rule in enumerate(self.rules):
                if not rule.matches(service, operation):
                    continue
                self._calls[index] += 1
                call = self._calls[index]
                if hit is None and self._selects(index, rule, call):
                    hit = (rule, call, index)
        return hit

    def _selects(self, index: int, rule: FaultRule, call: int) -> bool:
        if rule.nth is not None:
            return call == rule.nth
        if rule.rate is None:
            return True
        block, place = divmod(call - 1, BLOCK)
        if place == 0:  # draw this hundred's hits: exactly the share, carried over so any rate is exact
            hits = round(rule.rate * BLOCK * (block + 1)) - round(rule.rate * BLOCK * block)
            self._blocks[index] = set(self._randoms[index].sample(range(BLOCK), hits))
        return place in self._blocks[index]

    def crash_point(self, logical_id: str) -> int | None:
        """After how many AWS calls this invocation of the function exits, if a crash rule hits it."""
        hit = self._decide("lambda-function", logical_id)
        if hit is None:
            return None
        rule, call, index = hit
        with self._lock:
            after = rule.after if rule.after is not None else self._randoms[index].randrange(RANDOM_CRASH_CALLS)
        self.record("lambda", logical_id, call, f"crash@after:{after}", rule)
        return after

    def record(self, service: str, operation: str, call: int, fault: str, rule: FaultRule) -> None:
        record = FaultRecord(service, operation, call, fault, rule.text)
        with self._lock:
            self.records.append(record)
            if self.log_path is not None:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                with self.log_path.open("a") as sink:
                    sink.write(json.dumps(asdict(record)) + "\n")

    def hits(self, service: str | None = None, operation: str | None = None) -> list[FaultRecord]:
        with self._lock:
            return [
                r
                for r in self.records
                if (service is None or r.service == service) and (operation is None or r.operation == operation)
            ]


def read_log(path: Path) -> list[FaultRecord]:
    """The faults a local cloud logged (`<state dir>/faults.jsonl`), from another process."""
    if not path.exists():
        return []
    return [FaultRecord(**json.loads(line)) for line in path.read_text().splitlines() if line]


# -- which service and operation a request is ----------------------------------------------------
def _signing_service(environ: dict[str, Any]) -> str | None:
    found = re.search(r"Credential=[^/]+/\d+/[^/]+/([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
    if found:
        return found.group(1)
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    credential = (query.get("X-Amz-Credential") or [""])[0].split("/")
    return credential[3] if len(credential) > 3 else None


@cache
def _rest_routes(service: str) -> list[tuple[str, re.Pattern[str], frozenset[str], str]]:
    """(method, path pattern, query keys the URI requires, operation) of a REST service, most literal first."""
    model = _service_model(service)
    routes = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        path, _, query = http["requestUri"].partition("?")
        pattern = re.sub(r"\\\{[^}]+\\\+\\\}", "(.+)", re.escape(path))
        pattern = re.sub(r"\\\{[^}]+\\\}", "([^/]+)", pattern)
        keys = frozenset(k.split("=")[0] for k in query.split("&") if k)
        routes.append((http["method"], re.compile(f"^{pattern.rstrip('/')}/?$"), keys, name))
    routes.sort(key=lambda r: (-len(r[2]), -len(r[1].pattern.replace("([^/]+)", "").replace("(.+)", ""))))
    return routes


def identify(environ: dict[str, Any], services: Iterable[str], body: bytes) -> tuple[str, str, str] | None:
    """(service, operation, wire protocol) of a request, among the named boto3 services."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    signing = _signing_service(environ)
    for service in services:
        model = _service_model(service)
        if target:
            prefix, _, operation = target.rpartition(".")
            if prefix == model.metadata.get("targetPrefix"):
                return service, operation, "json"
            continue
        if signing != model.signing_name:
            continue
        if model.protocol == "query" or "query" in (model.metadata.get("protocols") or ()):
            form = urllib.parse.parse_qs(environ.get("QUERY_STRING", "")) | urllib.parse.parse_qs(
                body.decode("utf-8", "replace")
            )
            if "Action" in form:
                return service, form["Action"][0], "query"
            continue
        if model.protocol in ("rest-json", "rest-xml"):
            method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "")
            query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
            for route_method, pattern, keys, operation in _rest_routes(service):
                if route_method == method and keys <= query.keys() and pattern.match(path.rstrip("/") or "/"):
                    return service, operation, model.protocol
    return None


# -- the error each service answers -------------------------------------------------------------
THROTTLE_PREFERENCE = (
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestThrottled",
    "Throttling",
    "ThrottledException",
    "RequestThrottledException",
    "SlowDown",
)
INTERNAL_PREFERENCE = (
    "InternalServerError",
    "InternalServiceErrorException",
    "InternalServerException",
    "InternalErrorException",
    "InternalFailure",
    "ServiceException",
)


@cache
def error_for(service: str, kind: str) -> tuple[str, int, str]:
    """(code, HTTP status, message) of the service's answer for a fault, from botocore's model of it."""
    from botocore.retries.standard import ThrottledRetryableChecker

    model = _service_model(service)
    modeled = {shape.name: shape for shape in model.error_shapes}
    s3 = model.protocol == "rest-xml"
    if kind == "throttle":
        recognised = getattr(ThrottledRetryableChecker, "_THROTTLED_ERROR_CODES", ())
        for name in THROTTLE_PREFERENCE:
            shape = modeled.get(name)
            if shape is not None and shape.error_code in recognised:
                status = shape.metadata.get("error", {}).get("httpStatusCode") or 400
                return shape.error_code, status, "Rate exceeded"
        if s3:
            return "SlowDown", 503, "Please reduce your request rate."
        return ("Throttling" if model.protocol == "query" else "ThrottlingException"), 400, "Rate exceeded"
    if kind == "unavailable":
        shape = modeled.get("ServiceUnavailableException")
        code = shape.error_code if shape is not None else "ServiceUnavailable"
        return code, 503, "Service is unable to handle request."
    for name in INTERNAL_PREFERENCE:
        if name in modeled:
            return modeled[name].error_code, 500, "We encountered an internal error. Please try again."
    return ("InternalError" if s3 else "InternalFailure"), 500, "We encountered an internal error. Please try again."


def error_response(service: str, kind: str, protocol: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """The HTTP status line, headers and body AWS answers with, in the request's wire protocol."""
    code, status, message = error_for(service, kind)
    request_id = str(uuid.uuid4())
    headers = [("x-amzn-RequestId", request_id)]
    model = _service_model(service)
    if protocol == "json":
        namespace = model.metadata.get("targetPrefix", service)
        body = json.dumps({"__type": f"{namespace}#{code}", "message": message}).encode()
        headers += [("Content-Type", f"application/x-amz-json-{model.metadata.get('jsonVersion', '1.0')}")]
        if model.metadata.get("awsQueryCompatible") is not None:
            headers.append(("x-amzn-query-error", f"{code};{'Receiver' if status >= 500 else 'Sender'}"))
    elif protocol == "rest-json":
        body = json.dumps({"message": message}).encode()
        headers += [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)]
    elif protocol == "query":
        kind_of = "Receiver" if status >= 500 else "Sender"
        body = (
            f"<ErrorResponse><Error><Type>{kind_of}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers += [("Content-Type", "text/xml")]
    else:
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
            f"<RequestId>{request_id}</RequestId></Error>"
        ).encode()
        headers += [("Content-Type", "application/xml")]
    reasons = {400: "Bad Request", 429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}
    headers.append(("Content-Length", str(len(body))))
    return f"{status} {reasons.get(status, 'Error')}", headers, body


# -- the WSGI layer ------------------------------------------------------------------------------
class FaultLayer:
    """moto's WSGI application with the plan's faults in front of it."""

    def __init__(self, app: Callable[..., Any], plan: FaultPlan) -> None:
        self.app, self.plan = app, plan

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not self.plan.services:
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = _Replay(body)
        found = identify(environ, sorted(self.plan.services), body)
        hit = self.plan.decide(found[0], found[1]) if found else None
        if found is None or hit is None:
            return self.app(environ, start_response)
        rule, _ = hit
        if rule.kind == "timeout":
            time.sleep(rule.seconds)
            return self.app(environ, start_response)
        if rule.kind == "drop":
            answer = self.app(environ, lambda *args, **kwargs: lambda data: None)
            try:
                for _ in answer:  # the operation is applied and its answer made, then never sent
                    pass
            finally:
                getattr(answer, "close", lambda: None)()
            connection = environ.get("werkzeug.socket")
            if connection is not None:
                connection.shutdown(socket.SHUT_RDWR)
            raise ConnectionAbortedError(f"fault: {rule.text}")  # werkzeug drops the connection quietly
        status, headers, payload = error_response(found[0], rule.kind, found[2])
        start_response(status, headers)
        return [payload]


class _Replay:
    """The request body, read once by the layer, readable again by moto."""

    def __init__(self, body: bytes) -> None:
        import io

        self._stream = io.BytesIO(body)

    def read(self, size: int = -1) -> bytes:
        return self._stream.read(size if size is not None else -1)

    def readline(self, size: int = -1) -> bytes:
        return self._stream.readline(size)

    def __iter__(self) -> Any:
        return iter(self._stream)


def install(server: Any, plan: FaultPlan) -> FaultLayer:
    """Put the plan in front of a started `ThreadedMotoServer` (it serves `_server.app`, werkzeug's `app`)."""
    wsgi = server._server
    if wsgi is None or not hasattr(wsgi, "app"):
        raise RuntimeError("the moto server is not started, or no longer serves werkzeug's `app`")
    if isinstance(wsgi.app, FaultLayer):
        wsgi.app.plan = plan
        return wsgi.app
    layer = FaultLayer(wsgi.app, plan)
    wsgi.app = layer
    return layer
