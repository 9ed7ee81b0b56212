"""Long uploaded lists in the template: the campaigns API may write and read them under their prefix of the lake
bucket, and the run task may read them (the freeze step reads the list back)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ecrm.campaigns.ports import LIST_PREFIX

from infra.engines.campaigns import LISTS
from tests.infra.conftest import Synthesized, ref

pytestmark = pytest.mark.xdist_group("infra")


def s3_actions_on_lists(synthesized: Synthesized, handler: str) -> set[str]:
    """The S3 actions the campaigns function with `handler` may take on the long lists' prefix."""
    (function,) = [
        f["Properties"]
        for f in synthesized.resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == handler
        and "CAMPAIGNS_TABLE_NAME" in f["Properties"].get("Environment", {}).get("Variables", {})
    ]
    role = ref(function["Role"])
    actions: set[str] = set()
    for policy in synthesized.resources("AWS::IAM::Policy").values():
        props: dict[str, Any] = policy["Properties"]
        if role not in {ref(r) for r in props.get("Roles", [])}:
            continue
        for statement in props["PolicyDocument"]["Statement"]:
            if f"/{LISTS}*" in json.dumps(statement.get("Resource")):
                listed = statement["Action"]
                actions.update([listed] if isinstance(listed, str) else listed)
    return actions


def test_the_api_writes_and_reads_long_lists_and_the_run_reads_them(synthesized: Synthesized) -> None:
    assert LISTS == LIST_PREFIX
    api = s3_actions_on_lists(synthesized, "api.handler")
    assert {"s3:PutObject", "s3:GetObject*"} <= api
    run = s3_actions_on_lists(synthesized, "task_run.handler")
    assert "s3:GetObject*" in run
    assert "s3:PutObject" not in run
