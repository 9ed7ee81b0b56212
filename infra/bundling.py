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
# What a layer does not need at run time: bytecode caches, test suites, build inputs (Cython sources and
# templates, C headers, static libraries, meson files) and numpy's Fortran wrapper generator. Each layer's
# unzipped size is printed at synth and bounded by a test (Lambda allows 250 MiB with the function's code).
TRIM_DIRS = {"__pycache__", "tests", "test"}
TRIM_PATHS = ("numpy/f2py", "numpy/_core/include", "numpy/_core/lib", "numpy/_pyinstaller", "numpy/random/_examples")
# The Lambda Python runtime ships boto3 and its dependencies; a second copy in a layer only
# costs cold start and size (and would pin an older botocore than the runtime's).
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "python_dateutil", "urllib3", "six")
TRIM_SUFFIXES = {".pyc", ".pyx", ".pxd", ".pxi", ".pyi", ".c", ".cpp", ".h", ".hpp", ".tp", ".a", ".f", ".f90"}
TRIM_NAMES = {"meson.build"}
# Part of the cache key: a cache entry built under other trimming rules is not reused.
TRIM_RULES = repr((sorted(TRIM_DIRS), TRIM_PATHS, sorted(RUNTIME_PROVIDED), sorted(TRIM_SUFFIXES), sorted(TRIM_NAMES)))


def pip_install(
    requirements: Path,
    target: Path,
    *,
    python_version: str = LAMBDA_PYTHON_VERSION,
    platforms: tuple[str, ...] = PIP_PLATFORMS,
) -> None:
    """Install `requirements` for the Lambda runtime into `target`, through the cache."""
    inputs = requirements.read_bytes() + f"|{python_version}|{','.join(platforms)}|{TRIM_RULES}".encode()
    key = hashlib.sha256(inputs).hexdigest()[:16]
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
        trim(staging)
        try:
            staging.rename(cached)
        except OSError:  # another process finished the same install first
            shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(cached, target, dirs_exist_ok=True)


def trim(root: Path) -> None:
    """Remove from an installed `root` what the Lambda runtime provides and what nothing imports at run time."""
    for path in list(root.iterdir()):
        stem = path.name.split("-")[0].removesuffix(".py")
        if stem in RUNTIME_PROVIDED:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    for relative in TRIM_PATHS:
        shutil.rmtree(root / relative, ignore_errors=True)
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and path.name in TRIM_DIRS:
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file() and (path.suffix in TRIM_SUFFIXES or path.name in TRIM_NAMES):
            path.unlink()


def unzipped_size(root: Path) -> int:
    """Bytes of every file under `root`: what Lambda counts against its 250 MiB (function and layers, unzipped)."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


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
