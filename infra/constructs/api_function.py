"""An engine's API function and the REST routes it serves.

Routes are declared here, next to their auth, because API Gateway authorizes per method before
the function runs: a public route has no authorizer, every other route needs a valid Cognito ID
token. Group checks (staff vs customer) happen in the function. A test proves the routes declared
here are exactly the routes the function's resolver serves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
            description=f"eCRM {engine} REST API",
        )
        integration = apigw.LambdaIntegration(self.handler.function, proxy=True, allow_test_invoke=False)
        for route in self.routes:
            resource = foundation.api.root.resource_for_path(route.path)
            if route.public:
                method = resource.add_method(
                    route.method,
                    integration,
                    authorization_type=apigw.AuthorizationType.NONE,
                    request_validator=foundation.validator,
                )
                acknowledge(method, "AwsSolutions-APIG4", f"{route.method} {route.path} is public by design.")
                acknowledge(method, "AwsSolutions-COG4", f"{route.method} {route.path} is public by design.")
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
