"""The REST API, served on 127.0.0.1 from the template's routes, with API Gateway's behaviour.

moto stores REST APIs but does not serve them, so this front reads the same template: resources
and methods give the routes; a method with a Cognito authorizer needs a valid ID token (verified
against the local Cognito's JWKS, issuer and expiry, as API Gateway does) whose claims reach the
function in `requestContext.authorizer.claims`; the template's gateway responses give the bodies
of API Gateway's own 401/403/404/5xx answers. Requests become REST proxy events.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt

from infra.local.runtime import FunctionRuntime, InvocationError
from infra.local.template import Template, references


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # "/pings/{ping_id}"
    function_logical_id: str  # "" for a MOCK integration (a CORS preflight)
    authorization: str  # NONE | COGNITO_USER_POOLS
    user_pool_logical_ids: tuple[str, ...] = ()
    mock_status: int = 0
    mock_headers: tuple[tuple[str, str], ...] = ()

    def match(self, path: str) -> dict[str, str] | None:
        pattern = (
            "^"
            + re.sub(
                r"\\\{([^}+]+)\\\+\\\}",
                r"(?P<\1>.+)",
                re.sub(r"\\\{([^}+]+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path)),
            )
            + "$"
        )
        found = re.match(pattern, path)
        return found.groupdict() if found else None


def read_routes(template: Template) -> list[Route]:
    paths: dict[str, str] = {}
    apis = template.of_type("AWS::ApiGateway::RestApi")
    for api in apis:
        paths[f"{api.logical_id}.RootResourceId"] = ""
    resources = {r.logical_id: r for r in template.of_type("AWS::ApiGateway::Resource")}

    def path_of(ref: Any) -> str:
        if isinstance(ref, dict) and "Fn::GetAtt" in ref:
            return ""  # the root resource
        logical_id = ref["Ref"]
        if logical_id not in paths:
            resource = resources[logical_id]
            paths[logical_id] = path_of(resource.properties["ParentId"]) + "/" + resource.properties["PathPart"]
        return paths[logical_id]

    authorizers = {a.logical_id: a for a in template.of_type("AWS::ApiGateway::Authorizer")}
    routes = []
    for method in template.of_type("AWS::ApiGateway::Method"):
        props = method.properties
        if props.get("Integration", {}).get("Type") == "MOCK":  # what API Gateway answers itself (CORS preflight)
            answer = (props["Integration"].get("IntegrationResponses") or [{}])[0]
            headers = tuple(
                (name.rsplit(".", 1)[-1], str(value).strip("'"))
                for name, value in (answer.get("ResponseParameters") or {}).items()
            )
            routes.append(
                Route(
                    props["HttpMethod"],
                    path_of(props["ResourceId"]) or "/",
                    "",
                    "NONE",
                    (),
                    int(answer.get("StatusCode", 200)),
                    headers,
                )
            )
            continue
        function_ids = [
            lid
            for lid in references(props["Integration"]["Uri"])
            if lid in template.resources and template.resources[lid].type == "AWS::Lambda::Function"
        ]
        if len(function_ids) != 1:
            raise NotImplementedError(f"{method.logical_id}: only Lambda proxy integrations run locally")
        pools: tuple[str, ...] = ()
        if props.get("AuthorizationType") == "COGNITO_USER_POOLS":
            authorizer = authorizers[props["AuthorizerId"]["Ref"]]
            pools = tuple(sorted(references(authorizer.properties["ProviderARNs"])))
        routes.append(
            Route(
                props["HttpMethod"],
                path_of(props["ResourceId"]) or "/",
                function_ids[0],
                props.get("AuthorizationType", "NONE"),
                pools,
            )
        )
    return routes


class TokenVerifier:
    """Checks an ID token as API Gateway's Cognito authorizer does: signature, issuer, expiry, use."""

    def __init__(self, endpoint_url: str, region: str) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self._clients: dict[str, jwt.PyJWKClient] = {}

    def verify(self, token: str, user_pool_id: str) -> dict[str, Any]:
        client = self._clients.get(user_pool_id)
        if client is None:
            client = jwt.PyJWKClient(f"{self.endpoint_url}/{user_pool_id}/.well-known/jwks.json")
            self._clients[user_pool_id] = client
        key = client.get_signing_key_from_jwt(token)
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=["RS256"],
            options={"verify_aud": False, "require": ["exp", "iss"]},
            issuer=f"https://cognito-idp.{self.region}.amazonaws.com/{user_pool_id}",
        )
        if claims.get("token_use") != "id":
            raise jwt.InvalidTokenError("not an ID token")
        return claims


def claims_as_api_gateway_passes_them(claims: dict[str, Any]) -> dict[str, str]:
    """The REST API Cognito authorizer hands every claim over as a string; groups comma-joined."""
    out = {}
    for key, value in claims.items():
        if isinstance(value, list):
            out[key] = ",".join(str(v) for v in value)
        elif key in {"exp", "iat", "auth_time"} and isinstance(value, int):
            out[key] = time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(value))
        else:
            out[key] = str(value)
    return out


class LocalGateway:
    def __init__(
        self,
        template: Template,
        physical: dict[str, Any],
        runtime: FunctionRuntime,
        verifier: TokenVerifier,
        *,
        account: str,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.routes = read_routes(template)
        self.physical = physical
        self.runtime = runtime
        self.verifier = verifier
        self.account = account
        stages = template.of_type("AWS::ApiGateway::Stage")
        self.stage = stages[0].properties.get("StageName", "local") if stages else "local"
        self.responses = {
            r.properties["ResponseType"]: r.properties for r in template.of_type("AWS::ApiGateway::GatewayResponse")
        }
        self.server = ThreadingHTTPServer((host, port), self._handler_class())
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="gateway")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- request handling ----------------------------------------------------------------------
    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes, source_ip: str
    ) -> tuple[int, dict[str, str], bytes]:
        split = urlsplit(raw_path)
        path = split.path.rstrip("/") or "/"
        if path == f"/{self.stage}" or path.startswith(f"/{self.stage}/"):
            path = path[len(self.stage) + 1 :] or "/"
        candidates = [(r, r.match(path)) for r in self.routes]
        matching = [(r, params) for r, params in candidates if params is not None and r.method in {method, "ANY"}]
        if not matching:
            return self.gateway_response("MISSING_AUTHENTICATION_TOKEN", 403, "Missing Authentication Token")
        # API Gateway prefers literal segments over parameters
        route, params = min(matching, key=lambda rp: (rp[0].path.count("{"), -len(rp[0].path)))
        claims = None
        if route.authorization == "COGNITO_USER_POOLS":
            token = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
            token = token.removeprefix("Bearer ").strip()
            if not token:
                return self.gateway_response("UNAUTHORIZED", 401, "Unauthorized")
            try:
                pool_id = str(self.physical[route.user_pool_logical_ids[0]])
                claims = claims_as_api_gateway_passes_them(self.verifier.verify(token, pool_id))
            except (jwt.PyJWTError, KeyError, IndexError):
                return self.gateway_response("UNAUTHORIZED", 401, "Unauthorized")
        if not route.function_logical_id:
            return route.mock_status, dict(route.mock_headers), b""
        event = self._proxy_event(route, path, split.query, method, headers, body, params or {}, claims, source_ip)
        function = self.runtime.by_logical_id(route.function_logical_id)
        try:
            result = self.runtime.invoke(function.name, event)
        except InvocationError:  # the runtime logged the error and its traceback in the function's log
            return self.gateway_response("DEFAULT_5XX", 502, "Internal server error")
        if not isinstance(result, dict) or "statusCode" not in result:
            # API Gateway's "Malformed Lambda proxy response": logged where the function's own lines are.
            self.runtime.write_log(
                function,
                f"[ERROR] {method} {path}: malformed Lambda proxy response (502): a {type(result).__name__} "
                "without a statusCode\n",
            )
        return self._http_response(result)

    def gateway_response(self, response_type: str, status: int, message: str) -> tuple[int, dict[str, str], bytes]:
        props = self.responses.get(response_type) or self.responses.get(
            "DEFAULT_5XX" if status >= 500 else "DEFAULT_4XX"
        )
        if props is None:
            return status, {"Content-Type": "application/json"}, json.dumps({"message": message}).encode()
        status = int(props.get("StatusCode", status))
        template = props.get("ResponseTemplates", {}).get(
            "application/json", '{"message":$context.error.messageString}'
        )
        body = template.replace("$context.error.messageString", json.dumps(message)).replace(
            "$context.error.message", message
        )
        headers = {name.split(".")[-1]: value.strip("'") for name, value in props.get("ResponseParameters", {}).items()}
        return status, headers, body.encode()

    def _proxy_event(
        self,
        route: Route,
        path: str,
        query: str,
        method: str,
        headers: dict[str, str],
        body: bytes,
        params: dict[str, str],
        claims: dict[str, str] | None,
        source_ip: str,
    ) -> dict[str, Any]:
        multi_query = parse_qs(query, keep_blank_values=True) if query else None
        text_body: str | None = None
        is_base64 = False
        if body:
            try:
                text_body = body.decode("utf-8")
            except UnicodeDecodeError:
                text_body, is_base64 = base64.b64encode(body).decode(), True
        now = time.time()
        context: dict[str, Any] = {
            "resourceId": "local",
            "resourcePath": route.path,
            "httpMethod": method,
            "extendedRequestId": str(uuid.uuid4()),
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "path": f"/{self.stage}{path}",
            "accountId": self.account,
            "protocol": "HTTP/1.1",
            "stage": self.stage,
            "domainPrefix": "local",
            "requestTimeEpoch": int(now * 1000),
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": source_ip, "userAgent": headers.get("User-Agent")},
            "domainName": "127.0.0.1",
            "apiId": "local",
        }
        if claims is not None:
            context["authorizer"] = {"claims": claims}
        return {
            "resource": route.path,
            "path": path,
            "httpMethod": method,
            "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} if multi_query else None,
            "multiValueQueryStringParameters": multi_query,
            "pathParameters": params or None,
            "stageVariables": None,
            "requestContext": context,
            "body": text_body,
            "isBase64Encoded": is_base64,
        }

    def _http_response(self, result: Any) -> tuple[int, dict[str, str], bytes]:
        if not isinstance(result, dict) or "statusCode" not in result:
            return self.gateway_response("DEFAULT_5XX", 502, "Internal server error")
        headers = {k: str(v) for k, v in (result.get("headers") or {}).items()}
        for key, values in (result.get("multiValueHeaders") or {}).items():
            headers[key] = ",".join(str(v) for v in values)
        raw = result.get("body") or ""
        body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
        return int(result["statusCode"]), headers, body

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if length < 0:
                    self._answer(*gateway.gateway_response("DEFAULT_4XX", 400, "Invalid Content-Length"))
                    return
                body = self.rfile.read(length) if length else b""
                self._answer(
                    *gateway.handle(self.command, self.path, dict(self.headers.items()), body, self.client_address[0])
                )

            def _answer(self, status: int, headers: dict[str, str], payload: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() not in {"content-length", "connection"}:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            def __getattr__(self, name: str) -> Any:
                # Every method, TRACE, CONNECT and verbs nobody registered included, reaches the routes:
                # API Gateway answers a method no route has with its gateway response, never a 501 page.
                if name.startswith("do_"):
                    return self._serve
                raise AttributeError(name)

            def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
                """A request too malformed to route (bad request line, headers): a gateway problem, not HTML."""
                self.close_connection = True
                kind = "DEFAULT_5XX" if code >= 500 else "DEFAULT_4XX"
                status, headers, payload = gateway.gateway_response(kind, code, message or "Bad request")
                headers["Connection"] = "close"
                with contextlib.suppress(OSError):  # the client is gone
                    self._answer(status, headers, payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
