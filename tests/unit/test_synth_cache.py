"""The local cloud synthesizes once per fingerprint of what its templates are made from."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.local import synth_cache


def make_repo(root: Path) -> Path:
    for relative, text in {
        "cdk.json": '{"app": "python -m infra.app"}',
        "infra/app.py": "APP = 1\n",
        "infra/local/cloud.py": "LOCAL = 1\n",
        "shared/ecrm/core/names.py": "NAME = 'ecrm'\n",
        "functions/platform/api.py": "def handler(event, context): ...\n",
        "layers/common/requirements.txt": "pydantic\n",
    }.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_fingerprint_follows_what_the_templates_are_made_from(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    context = {"aws:cdk:bundling-stacks": []}
    first = synth_cache.fingerprint(repo, context, {})

    # The local cloud's own code, caches and unrelated environment do not change the templates
    (repo / "infra/local/cloud.py").write_text("LOCAL = 2\n")
    (repo / "infra/__pycache__").mkdir()
    (repo / "infra/__pycache__/app.cpython-311.pyc").write_bytes(b"\0")
    assert synth_cache.fingerprint(repo, context, {"HOME": "/elsewhere"}) == first

    # Code, context, cdk.json and the CDK's environment do
    (repo / "shared/ecrm/core/names.py").write_text("NAME = 'crm'\n")
    changed = synth_cache.fingerprint(repo, context, {})
    assert changed != first
    assert synth_cache.fingerprint(repo, {**context, "ecrm:stage": "prod"}, {}) != changed
    assert synth_cache.fingerprint(repo, context, {"CDK_DEFAULT_REGION": "eu-west-1"}) != changed
    (repo / "cdk.json").write_text('{"app": "python3 -m infra.app"}')
    assert synth_cache.fingerprint(repo, context, {}) != changed


def test_an_assembly_is_synthesized_once_per_fingerprint_and_old_ones_pruned(tmp_path: Path) -> None:
    runs: list[str] = []

    def synthesize(folder: Path) -> None:
        runs.append(folder.name)
        folder.mkdir(parents=True)
        (folder / "Stack.template.json").write_text("{}")

    cache = tmp_path / "synth"
    first = synth_cache.cached_assembly(cache, "a" * 24, synthesize)
    again = synth_cache.cached_assembly(cache, "a" * 24, synthesize)
    assert first == again == cache / ("a" * 24)
    assert len(runs) == 1
    assert runs[0].startswith(".staging-")
    assert (first / "Stack.template.json").is_file()

    for key in "bcde":
        synth_cache.cached_assembly(cache, key * 24, synthesize)
    kept = sorted(p.name for p in cache.iterdir())
    assert len(kept) == synth_cache.KEEP
    assert "e" * 24 in kept
    assert not [p for p in cache.iterdir() if p.name.startswith(".staging-")]


def test_a_failed_synth_leaves_no_assembly(tmp_path: Path) -> None:
    def broken(folder: Path) -> None:
        folder.mkdir(parents=True)
        raise RuntimeError("cdk-nag: unacknowledged findings")

    cache = tmp_path / "synth"
    with pytest.raises(RuntimeError, match="cdk-nag"):
        synth_cache.cached_assembly(cache, "f" * 24, broken)
    assert list(cache.iterdir()) == []
