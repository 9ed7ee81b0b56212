"""Every command the README shows runs as written, against the local cloud.

Each fenced ```bash block of README.md runs whole, on its own, in `bash -euo pipefail` from the
repository's root (so a variable a block uses and does not set fails it), against the e2e suite's
local cloud. A block is skipped only when the line just before its fence is a marker
`<!-- not run: REASON -->` with one of these reasons, and the reasons are kept few on purpose:

- `needs an AWS account`: deploying, or an operation on a deployed stack;
- `long-running`: a command that serves until stopped or runs for minutes (`make demo`, `make test`);
- `needs data that may not be redistributed`: a public data set the repository may not ship.

The README's address of the local cloud is `http://127.0.0.1:4510`, set once per block as `API=...`
(a test below keeps it there); the e2e cloud listens on a free port, so that address is replaced by
the cloud's own in the blocks run. Commands find the cloud through its state directory
(`ECRM_LOCAL_STATE_DIR`); AWS configuration is hidden from them, so nothing can reach an account.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.local.cloud import LocalCloud

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
README_API = "http://127.0.0.1:4510"
NOT_RUN = re.compile(r"^<!-- not run: (?P<reason>.+?) -->$")
REASONS = {"needs an AWS account", "long-running", "needs data that may not be redistributed"}
FENCE = re.compile(r"^(?P<indent> *)```(?P<language>\S*)\s*$")
SERVER_ERROR = re.compile(r'"status":\s*5\d\d')


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence, 1-based
    script: str
    not_run: str | None  # the marker's reason

    @property
    def id(self) -> str:
        first = next((ln for ln in self.script.splitlines() if ln.strip()), "")
        return f"L{self.line}: {first[:50]}"


def bash_blocks(text: str) -> list[Block]:
    lines = text.splitlines()
    blocks: list[Block] = []
    at = 0
    while at < len(lines):
        opening = FENCE.match(lines[at])
        if not opening or not opening["language"]:
            at += 1
            continue
        indent, end = opening["indent"], at + 1
        while end < len(lines) and lines[end].rstrip() != f"{indent}```":
            end += 1
        if opening["language"] == "bash":
            marker = NOT_RUN.match(lines[at - 1].strip()) if at else None
            script = "\n".join(ln.removeprefix(indent) for ln in lines[at + 1 : end])
            blocks.append(Block(at + 1, script, marker["reason"] if marker else None))
        at = end + 1
    return blocks


BLOCKS = bash_blocks(README.read_text(encoding="utf-8"))
RUN = [b for b in BLOCKS if b.not_run is None]


def test_the_readme_has_blocks_to_run_and_marks_the_others_with_a_known_reason() -> None:
    assert len(RUN) >= 5
    assert {b.not_run for b in BLOCKS if b.not_run} <= REASONS
    assert len(BLOCKS) - len(RUN) < len(RUN)  # skipping stays the exception


def test_the_local_clouds_address_is_set_once_per_block_as_api() -> None:
    for block in RUN:
        for line in block.script.splitlines():
            if "127.0.0.1:" in line:
                assert line.startswith(f"API={README_API}"), f"README line in block {block.id}: {line}"


@pytest.mark.parametrize("block", RUN, ids=[b.id for b in RUN])
def test_a_readme_block_runs_as_written(cloud: LocalCloud, block: Block, tmp_path: Path) -> None:
    # Given the README's block, pointed at the e2e cloud only if it listens elsewhere than the README says
    script = block.script
    if cloud.state.api_url != README_API:
        script = script.replace(f"API={README_API}", f"API={cloud.state.api_url}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {
        "ECRM_LOCAL_STATE_DIR": str(cloud.state_dir),
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }

    # When it runs in bash from the repository's root
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # a hang fails the test; not a measure of speed
    )

    # Then every command in it succeeded, without a traceback or a server error
    output = f"{script}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    assert result.returncode == 0, output
    assert "Traceback" not in result.stdout + result.stderr, output
    assert not SERVER_ERROR.search(result.stdout), output
