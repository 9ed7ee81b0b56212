"""CDK assertions, cdk-nag, cfn-lint and real bundling of the CDK app in `infra/`."""
