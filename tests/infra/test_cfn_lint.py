"""cfn-lint finds nothing in the synthesized templates (root and nested), with the repository's .cfnlintrc.yaml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.conftest import REPO_ROOT, STACK_NAME, Synthesized

pytestmark = pytest.mark.xdist_group("infra")

CFN_LINT = Path(sys.executable).with_name("cfn-lint")
CONFIG = REPO_ROOT / ".cfnlintrc.yaml"


def test_cfn_lint_is_clean(synthesized: Synthesized) -> None:
    assert CFN_LINT.exists(), f"cfn-lint is not installed next to {sys.executable}"
    # the root and every nested template
    templates = [str(synthesized.outdir / name) for name in synthesized.templates]
    assert f"{STACK_NAME}.template.json" in synthesized.templates
    assert len(templates) > 1
    result = subprocess.run(
        [str(CFN_LINT), "--config-file", str(CONFIG), "--format", "parseable", "--", *templates],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.stdout.strip() == "", f"cfn-lint matches:\n{result.stdout}"
    assert result.returncode == 0, result.stderr
