"""An engine's API function and the REST routes it serves.

Routes are declared here, next to their auth, because API Gateway authorizes per method before
the function runs: a public route has no authorizer, every other route needs a valid Cognito ID
token. Group checks (staff vs customer) happen in the function. A test proves the routes declared
here are exactly the routes the function's resolver serves.

The path's resources belong to the one REST API (in the root stack: engines share paths such as
`/customers/{customer_id}`); the methods belong to this construct, so an engine in a nested stack
carries its own methods and their invoke permissions. CDK makes the API's deployment depend on every
method, and its logical id changes with them, so each `cdk deploy` deploys the current routes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
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
        # A Lambda proxy integration whose invoke permissions this construct grants per method, for any
        # stage: CDK's LambdaIntegration names the deployed stage in them, and a nested stack that
        # references the stage while the deployment waits for the nested stack's methods is a cycle.
        integration = apigw.AwsIntegration(
            proxy=True, service="lambda", path=f"2015-03-31/functions/{self.handler.function.function_arn}/invocations"
        )
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
                options = apigw.MethodOptions(
                    authorization_type=apigw.AuthorizationType.NONE, request_validator=foundation.validator
                )
            else:
                options = apigw.MethodOptions(
                    authorizer=foundation.authorizer,
                    authorization_type=apigw.AuthorizationType.COGNITO,
                    request_validator=foundation.validator,
                )
            method = apigw.Method(
                self,
                f"{route.method}{route.path.replace('/', '_')}",
                resource=resource,
                http_method=route.method,
                integration=integration,
                options=options,
            )
            self.handler.function.add_permission(
                f"Invoke{method.node.id}",
                principal=iam.ServicePrincipal("apigateway.amazonaws.com"),
                source_arn=foundation.api.arn_for_execute_api(route.method, re.sub(r"\{[^}]*\}", "*", route.path), "*"),
                scope=method,
            )
            if route.public:
                reason = f"{route.method} {route.path}: {route.public_because}."
                acknowledge(method, "AwsSolutions-APIG4", reason)
                acknowledge(method, "AwsSolutions-COG4", reason)

    @property
    def function(self) -> lambda_.Function:
        return self.handler.function
