"""The local cloud's synthesized templates, kept between starts while nothing they are made from changes.

A CDK synth costs the local cloud's start-up some 15 s of a jsii process (more on a busy
machine), and the e2e suite, the tour and `ecrm local up` each start a cloud. The templates
depend only on the CDK app's code (`infra/`, except the local cloud itself), the runtime code it
imports for names and schemas (`shared/ecrm/`), the functions' folders (their asset hashes),
`cdk.json`, the synth context and the environment the app reads (`CDK_*`): their fingerprint names
the cached cloud assembly under `.local-cloud/synth/`. A cache is written to a private folder and
renamed into place, so clouds starting side by side never read a half-written one; any change
to an input gives a new fingerprint, and only the newest few assemblies are kept.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

KEEP = 3  # assemblies kept (one per recent fingerprint)
MARKER = ".fingerprint"


def source_files(repo: Path) -> Iterator[Path]:
    """Every file the synthesized templates are made from, in a stable order."""
    yield repo / "cdk.json"
    for folder in ("infra", "shared/ecrm", "functions", "layers"):
        for path in sorted((repo / folder).rglob("*")):
            relative = path.relative_to(repo).as_posix()
            if not path.is_file() or "__pycache__" in relative or relative.startswith("infra/local/"):
                continue
            yield path


def fingerprint(repo: Path, context: Mapping[str, Any], environment: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    for path in source_files(repo):
        digest.update(path.relative_to(repo).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    digest.update(json.dumps(dict(context), sort_keys=True, default=str).encode())
    cdk_environment = {k: v for k, v in environment.items() if k.startswith("CDK_")}
    digest.update(json.dumps(cdk_environment, sort_keys=True).encode())
    return digest.hexdigest()[:24]


def cached_assembly(
    cache_root: Path,
    key: str,
    synthesize: Callable[[Path], None],
) -> Path:
    """The cloud assembly for `key`: the cached one, or `synthesize(folder)` into a new one."""
    target = cache_root / key
    if (target / MARKER).is_file():
        return target
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = cache_root / f".staging-{uuid.uuid4().hex}"
    try:
        synthesize(staging)
        (staging / MARKER).write_text(key)
        try:
            staging.rename(target)
        except OSError:  # another cloud cached the same fingerprint meanwhile: theirs is as good
            if not (target / MARKER).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _prune(cache_root, keep=target)
    return target


def _prune(cache_root: Path, *, keep: Path) -> None:
    assemblies = sorted(
        (p for p in cache_root.iterdir() if p.is_dir() and (p / MARKER).is_file() and p != keep),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for stale in assemblies[KEEP - 1 :]:
        shutil.rmtree(stale, ignore_errors=True)
