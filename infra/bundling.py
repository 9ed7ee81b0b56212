"""Bundling Lambda layers on this machine, without Docker.

`pip install --target` with `--only-binary=:all:` and the Lambda runtime's Python version and
platform tags fetches the right wheels whatever Python runs the synth. The pip step is cached
under `.build/` by a hash of its inputs; the `ecrm` package is copied fresh on every bundle.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from infra.settings import LAMBDA_PYTHON_VERSION, PACKAGE_DIR, PIP_PLATFORMS, REPO_ROOT

CACHE_DIR = REPO_ROOT / ".build" / "pip"
TRIM_DIRS = {"__pycache__", "tests", "test"}
# The Lambda Python runtime ships boto3 and its dependencies; a second copy in a layer only
# costs cold start and size (and would pin an older botocore than the runtime's).
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "python_dateutil", "urllib3", "six")
TRIM_SUFFIXES = {".pyc", ".pyx", ".pxd", ".pyi", ".c", ".cpp", ".h"}


def pip_install(
    requirements: Path,
    target: Path,
    *,
    python_version: str = LAMBDA_PYTHON_VERSION,
    platforms: tuple[str, ...] = PIP_PLATFORMS,
) -> None:
    """Install `requirements` for the Lambda runtime into `target`, through the cache."""
    key = hashlib.sha256(requirements.read_bytes() + f"|{python_version}|{','.join(platforms)}".encode()).hexdigest()[
        :16
    ]
    cached = CACHE_DIR / f"{requirements.parent.name}-{key}"
    if not cached.exists():
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        # A private staging folder, renamed into place: concurrent synths never share a half-built one.
        staging = Path(tempfile.mkdtemp(prefix=f"{cached.name}.", dir=CACHE_DIR))
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-warn-conflicts",
            "--disable-pip-version-check",
            "--no-compile",
            "--only-binary=:all:",
            "--implementation",
            "cp",
            "--python-version",
            python_version,
            "--target",
            str(staging),
            "-r",
            str(requirements),
        ]
        for platform in platforms:
            command += ["--platform", platform]
        subprocess.run(command, check=True)
        _trim(staging)
        try:
            staging.rename(cached)
        except OSError:  # another process finished the same install first
            shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(cached, target, dirs_exist_ok=True)


def _trim(root: Path) -> None:
    for path in list(root.iterdir()):
        stem = path.name.split("-")[0].removesuffix(".py")
        if stem in RUNTIME_PROVIDED:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and path.name in TRIM_DIRS:
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file() and path.suffix in TRIM_SUFFIXES:
            path.unlink()


def copy_package(target: Path) -> None:
    shutil.copytree(
        PACKAGE_DIR,
        target / PACKAGE_DIR.name,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )


@jsii.implements(ILocalBundling)
class LayerBundling:
    """Builds `python/` of a layer: its requirements, plus the `ecrm` package when asked."""

    def __init__(self, layer_dir: Path, *, include_package: bool, python_version: str = LAMBDA_PYTHON_VERSION) -> None:
        self.layer_dir = layer_dir
        self.include_package = include_package
        self.python_version = python_version

    def try_bundle(self, output_dir: str, *, image: DockerImage | None = None, **_: object) -> bool:
        target = Path(output_dir) / "python"
        pip_install(self.layer_dir / "requirements.txt", target, python_version=self.python_version)
        if self.include_package:
            copy_package(target)
        return True


def layer_code(layer_dir: Path, *, include_package: bool, python_version: str = LAMBDA_PYTHON_VERSION) -> lambda_.Code:
    return lambda_.Code.from_asset(
        str(layer_dir),
        asset_hash_type=AssetHashType.OUTPUT,
        bundling=BundlingOptions(
            image=DockerImage.from_registry("public.ecr.aws/sam/build-python" + LAMBDA_PYTHON_VERSION),
            local=LayerBundling(layer_dir, include_package=include_package, python_version=python_version),
        ),
    )
