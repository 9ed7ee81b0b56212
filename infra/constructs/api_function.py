"""An engine's API function and the REST routes it serves.

Routes are declared here, next to their auth, because API Gateway authorizes per method before
the function runs: a public route has no authorizer, every other route needs a valid Cognito ID
token. Group checks (staff vs customer) happen in the function. A test proves the routes declared
here are exactly the routes the function's resolver serves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constructs.engine_function import EngineFunction
from infra.constructs.foundation import Foundation
from infra.constructs.nag import acknowledge


@dataclass(frozen=True)
class ApiRoute:
    method: str
    path: str
    public: bool = False
    # why a public route needs no Cognito token (e.g. "authenticated by the source's write key")
    public_because: str = "public by design"
    # browsers call it from other origins (CORS preflight answered by API Gateway)
    cors: bool = False


class ApiFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        foundation: Foundation,
        engine: str,
        routes: Sequence[ApiRoute],
        environment: dict[str, str] | None = None,
        module: str = "api",
        memory_size: int = 1024,
        timeout: Duration = Duration.seconds(10),
    ) -> None:
        super().__init__(scope, construct_id)
        self.routes = tuple(routes)
        self.handler = EngineFunction(
            self,
            "Handler",
            engine=engine,
            module=module,
            settings=foundation.settings,
            layers=[foundation.common_layer],
            environment=environment,
            memory_size=memory_size,
            timeout=timeout,
            description=f"eCRM {engine} REST API",
        )
        integration = apigw.LambdaIntegration(self.handler.function, proxy=True, allow_test_invoke=False)
        for route in self.routes:
            resource = foundation.api.root.resource_for_path(route.path)
            if (
                route.cors
                and resource.default_cors_preflight_options is None
                and not any(m.http_method == "OPTIONS" for m in resource.node.children if isinstance(m, apigw.Method))
            ):
                preflight = resource.add_cors_preflight(
                    allow_origins=apigw.Cors.ALL_ORIGINS,
                    allow_methods=[route.method, "OPTIONS"],
                    allow_headers=["Authorization", "Content-Type"],
                    max_age=Duration.hours(1),
                )
                acknowledge(preflight, "AwsSolutions-APIG4", f"OPTIONS {route.path}: the CORS preflight is anonymous.")
                acknowledge(preflight, "AwsSolutions-COG4", f"OPTIONS {route.path}: the CORS preflight is anonymous.")
            if route.public:
                method = resource.add_method(
                    route.method,
                    integration,
                    authorization_type=apigw.AuthorizationType.NONE,
                    request_validator=foundation.validator,
                )
                reason = f"{route.method} {route.path}: {route.public_because}."
                acknowledge(method, "AwsSolutions-APIG4", reason)
                acknowledge(method, "AwsSolutions-COG4", reason)
            else:
                resource.add_method(
                    route.method,
                    integration,
                    authorizer=foundation.authorizer,
                    authorization_type=apigw.AuthorizationType.COGNITO,
                    request_validator=foundation.validator,
                )

    @property
    def function(self) -> lambda_.Function:
        return self.handler.function
