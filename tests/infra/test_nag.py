"""cdk-nag's AWS Solutions checks really gate the synth, and every exception to them is explained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.infra.conftest import STACK_NAME, Synthesized, read_validation_report, unacknowledged_findings

pytestmark = pytest.mark.xdist_group("infra")


def test_the_app_is_checked_by_aws_solutions_and_clean(synthesized: Synthesized) -> None:
    # An environment-agnostic stack (no account or region known, as CI synthesizes it; the CLI's synth for a
    # concrete account and region is tests/infra/test_cdk_cli.py)
    manifest = json.loads((synthesized.outdir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["artifacts"][STACK_NAME]["environment"].startswith("aws://unknown-account/")
    # The session synth succeeding already means no unacknowledged error; the report says why.
    report = read_validation_report(synthesized.outdir)
    assert report is not None, "no validation report: is the AwsSolutions plugin registered on the app?"
    plugins = {plugin["pluginName"]: plugin for plugin in report["pluginReports"]}
    assert "AwsSolutions" in plugins
    assert unacknowledged_findings(report) == []
    assert {plugin["conclusion"] for plugin in plugins.values()} == {"success"}


def test_every_acknowledged_finding_has_a_reason(synthesized: Synthesized) -> None:
    report = read_validation_report(synthesized.outdir)
    assert report is not None
    acknowledged = [v for plugin in report["pluginReports"] for v in plugin.get("suppressedViolations", [])]
    assert acknowledged, "expected the documented acknowledgements (COG2, IAM4, IAM5, ...)"
    unexplained = [
        f"{v['ruleName']} at {v.get('acknowledgedAt')}"
        for v in acknowledged
        if len((v.get("reason") or "").strip()) < 20
    ]
    assert not unexplained, f"acknowledged without a real reason: {unexplained}"


def test_nag_fails_the_synth_of_a_queue_without_dlq_or_tls(tmp_path: Path) -> None:
    import aws_cdk as cdk
    from aws_cdk import aws_sqs as sqs
    from cdk_nag import AwsSolutionsChecks

    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Careless")
    sqs.Queue(stack, "Queue", enforce_ssl=False)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    findings = "\n".join(unacknowledged_findings(read_validation_report(tmp_path)))
    assert "AwsSolutions-SQS3" in findings  # no dead-letter queue
    assert "AwsSolutions-SQS4" in findings  # no aws:SecureTransport condition


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (None, "arn:<AWS::Partition>:glue:<AWS::Region>:<AWS::AccountId>:table/lake/*"),
        (
            {"account": "123456789012", "region": "eu-west-1"},
            "arn:<AWS::Partition>:glue:eu-west-1:123456789012:table/lake/*",
        ),
    ],
)
def test_a_finding_names_the_region_and_account_as_the_stack_knows_them(
    env: dict[str, str] | None, expected: str
) -> None:
    import aws_cdk as cdk

    from infra.constructs.nag import finding_text

    # Given a stack without an environment, and one deployed by `cdk deploy` with the caller's account and region
    stack = cdk.Stack(cdk.App(), "Stack", env=cdk.Environment(**env) if env else None)
    arn = stack.format_arn(service="glue", resource="table", resource_name="lake/*")
    # Then the finding is written as cdk-nag writes it, so its acknowledgement holds in both
    assert finding_text(stack, arn) == expected
    reference = {"Fn::Select": [6, {"Fn::Split": [":", {"Ref": "Machine"}]}]}
    assert finding_text(stack, cdk.Fn.join("", ["x:", cdk.Token.as_string(reference), ":*"])) == (
        'x:{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"Machine"}]}]}:*'
    )
