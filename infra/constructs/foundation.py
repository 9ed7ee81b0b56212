"""What every engine builds on: the event bus, the key, the layers, identity and the REST API."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from infra.bundling import layer_code
from infra.constructs.nag import acknowledge
from infra.settings import (
    LAMBDA_ARCHITECTURE,
    LAMBDA_PYTHON_VERSION,
    LAMBDA_RUNTIME,
    LAYERS_DIR,
    STAFF_GROUPS,
    DeploymentSettings,
)


def gateway_problem_template(code: str, title: str, status: str | None) -> str:
    """An RFC 9457 body for API Gateway's own responses (authorizer denials, unknown routes)."""
    status_member = f'"status": {status}, ' if status else ""
    head = f'{{"type": "https://ecrm.dev/problems/{code}", "title": "{title}", {status_member}'
    return head + '"detail": $context.error.messageString}'


GATEWAY_PROBLEMS = {
    apigw.ResponseType.UNAUTHORIZED: ("401", "unauthorized", "Unauthorized"),
    apigw.ResponseType.ACCESS_DENIED: ("403", "forbidden", "Forbidden"),
    apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN: ("404", "route-not-found", "Not found"),
    apigw.ResponseType.THROTTLED: ("429", "throttled", "Too many requests"),
    apigw.ResponseType.DEFAULT_4_XX: (None, "bad-request", "Bad request"),
    apigw.ResponseType.DEFAULT_5_XX: (None, "gateway-error", "Gateway error"),
}


class Foundation(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploymentSettings,
        layer_python_version: str = LAMBDA_PYTHON_VERSION,
    ) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        self.key = kms.Key(
            self,
            "Key",
            enable_key_rotation=True,
            alias=f"alias/{settings.name('data')}",
            description="eCRM data at rest: tables and queues",
            removal_policy=settings.removal_policy,
        )
        self.bus = events.EventBus(self, "Bus", event_bus_name=settings.bus_name)
        self.bus.archive(
            "Archive",
            archive_name=settings.name("all-events"),
            description="Every eCRM domain event, for replay after an incident",
            event_pattern=events.EventPattern(account=[Stack.of(self).account]),
            retention=Duration.days(90),
        )
        self.common_layer = lambda_.LayerVersion(
            self,
            "CommonLayer",
            code=layer_code(LAYERS_DIR / "common", include_package=True, python_version=layer_python_version),
            compatible_runtimes=[LAMBDA_RUNTIME],
            compatible_architectures=[LAMBDA_ARCHITECTURE],
            description="ecrm package, Powertools, pydantic",
        )
        self.ml_layer = lambda_.LayerVersion(
            self,
            "MlLayer",
            code=layer_code(LAYERS_DIR / "ml", include_package=False, python_version=layer_python_version),
            compatible_runtimes=[LAMBDA_RUNTIME],
            compatible_architectures=[LAMBDA_ARCHITECTURE],
            description="numpy, scipy, scikit-learn: training and scoring jobs only",
        )
        self._identity(settings)
        self._api(settings)

    # -- identity ------------------------------------------------------------------------------
    def _identity(self, settings: DeploymentSettings) -> None:
        self.user_pool = cognito.UserPool(
            self,
            "UserPool",
            user_pool_name=settings.name("users"),
            self_sign_up_enabled=True,
            sign_in_aliases=cognito.SignInAliases(email=True),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            standard_attributes=cognito.StandardAttributes(
                email=cognito.StandardAttribute(required=True, mutable=True)
            ),
            custom_attributes={"customer_id": cognito.StringAttribute(min_len=1, max_len=64, mutable=True)},
            password_policy=cognito.PasswordPolicy(
                min_length=12,
                require_digits=True,
                require_lowercase=True,
                require_uppercase=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            mfa=cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            deletion_protection=settings.retain_data,
            removal_policy=settings.removal_policy,
        )
        acknowledge(
            self.user_pool,
            "AwsSolutions-COG2",
            "One pool serves customers and staff; MFA is optional (TOTP) because mandatory MFA "
            "blocks customer sign-up. Staff MFA is enforced by the organisation's IdP policy.",
        )
        for rule in ("AwsSolutions-COG3", "AwsSolutions-COG8"):
            acknowledge(
                self.user_pool,
                rule,
                "Threat protection needs the Cognito Plus plan, billed per monthly active user; "
                "at customer scale that is an explicit cost decision left to the deployer.",
            )
        for precedence, group in enumerate(STAFF_GROUPS):
            cognito.CfnUserPoolGroup(
                self,
                f"Group{group.title()}",
                user_pool_id=self.user_pool.user_pool_id,
                group_name=group,
                precedence=precedence,
                description=f"eCRM staff: {group}",
            )
        readable = (
            cognito.ClientAttributes()
            .with_standard_attributes(
                email=True, email_verified=True, given_name=True, family_name=True, phone_number=True, locale=True
            )
            .with_custom_attributes("customer_id")
        )
        writable = cognito.ClientAttributes().with_standard_attributes(
            email=True, given_name=True, family_name=True, phone_number=True, locale=True
        )
        self.staff_client = self.user_pool.add_client(
            "StaffClient",
            user_pool_client_name=settings.name("staff"),
            auth_flows=cognito.AuthFlow(user_srp=True, admin_user_password=True),
            prevent_user_existence_errors=True,
            disable_o_auth=True,
            read_attributes=readable,
            write_attributes=writable,
            id_token_validity=Duration.hours(1),
            access_token_validity=Duration.hours(1),
        )
        # Customers may never write custom:customer_id: it is what `/me` routes trust.
        self.customer_client = self.user_pool.add_client(
            "CustomerClient",
            user_pool_client_name=settings.name("customers"),
            auth_flows=cognito.AuthFlow(user_srp=True),
            prevent_user_existence_errors=True,
            disable_o_auth=True,
            read_attributes=readable,
            write_attributes=writable,
            id_token_validity=Duration.hours(1),
            access_token_validity=Duration.hours(1),
        )

    # -- REST API ------------------------------------------------------------------------------
    def _api(self, settings: DeploymentSettings) -> None:
        access_logs = logs.LogGroup(
            self, "ApiAccessLogs", retention=logs.RetentionDays.THREE_MONTHS, removal_policy=settings.removal_policy
        )
        self.api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=settings.name("api"),
            description="eCRM platform REST API",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,
            deploy_options=apigw.StageOptions(
                stage_name=settings.stage,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                metrics_enabled=True,
                tracing_enabled=settings.tracing,
                throttling_rate_limit=settings.api_rate_limit,
                throttling_burst_limit=settings.api_burst_limit,
            ),
        )
        # RestApi adds an `Endpoint` output of its own; like every output, it says what it is.
        endpoint = self.api.node.find_child("Endpoint")
        assert isinstance(endpoint, CfnOutput)
        endpoint.description = "Base URL of the REST API's deployed stage (the same as ApiUrl)"
        acknowledge(
            self.api,
            "AwsSolutions-IAM4",
            "The account-level API Gateway CloudWatch role uses the AWS managed push-to-logs "
            "policy, the documented way to enable execution logging.",
            applies_to=[
                "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
            ],
        )
        self.validator = self.api.add_request_validator(
            "Validator",
            request_validator_name="body-and-parameters",
            validate_request_body=True,
            validate_request_parameters=True,
        )
        self.authorizer = apigw.CognitoUserPoolsAuthorizer(
            self,
            "Authorizer",
            cognito_user_pools=[self.user_pool],
            authorizer_name="cognito",
            identity_source="method.request.header.Authorization",
            results_cache_ttl=Duration.minutes(5),
        )
        for response_type, (status, code, title) in GATEWAY_PROBLEMS.items():
            template = gateway_problem_template(code, title, status)
            self.api.add_gateway_response(
                f"Problem{code.title().replace('-', '')}",
                type=response_type,
                status_code=status,
                response_headers={"Content-Type": "'application/problem+json'"},
                templates={"application/json": template},
            )
        self._waf(settings)

    def _waf(self, settings: DeploymentSettings) -> None:
        def managed(name: str, priority: int) -> wafv2.CfnWebACL.RuleProperty:
            return wafv2.CfnWebACL.RuleProperty(
                name=name,
                priority=priority,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS", name=name
                    )
                ),
                visibility_config=_visibility(name),
            )

        rate_limit = wafv2.CfnWebACL.RuleProperty(
            name="RateLimitPerIp",
            priority=0,
            action=wafv2.CfnWebACL.RuleActionProperty(block={}),
            statement=wafv2.CfnWebACL.StatementProperty(
                rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(limit=3000, aggregate_key_type="IP")
            ),
            visibility_config=_visibility("RateLimitPerIp"),
        )
        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility(settings.name("api")),
            rules=[
                rate_limit,
                managed("AWSManagedRulesCommonRuleSet", 1),
                managed("AWSManagedRulesKnownBadInputsRuleSet", 2),
                managed("AWSManagedRulesAmazonIpReputationList", 3),
            ],
        )
        wafv2.CfnWebACLAssociation(
            self,
            "WebAclAssociation",
            resource_arn=self.api.deployment_stage.stage_arn,
            web_acl_arn=self.web_acl.attr_arn,
        )


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )
