"""Real bundling, without Docker: the layer CDK uploads, and the functions running on a layer.

Two bundles of the common layer:
- the deployed one, through CDK's local bundling exactly as the stack declares it (Python 3.14,
  manylinux aarch64 wheels): checked file by file, since this machine cannot import it;
- one for this machine's Python and architecture, built by the same `pip_install`/`copy_package`
  steps: every function of the synthesized stack is imported from its staged code asset on top
  of it, in a clean interpreter that sees neither the repository nor the venv's site-packages,
  with exactly its configured environment, and the API answers the public health request.
pip downloads are cached under `.build/pip`, so only the first run pays for them.
"""

from __future__ import annotations

import compileall
import importlib.util
import json
import platform
import re
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest

from tests.infra.conftest import REPO_ROOT, Synthesized, ref

pytestmark = [pytest.mark.xdist_group("infra"), pytest.mark.slow]

COMMON_LAYER = REPO_ROOT / "layers" / "common"
PACKAGE = REPO_ROOT / "shared" / "ecrm"
OPERATOR_PACKAGE = REPO_ROOT / "shared" / "ecrm_ops"
PROBE = Path(__file__).with_name("lambda_probe.py")
HEALTH_EVENT = REPO_ROOT / "events" / "samples" / "apigateway" / "rest_get_health_public.json"
# What the Lambda Python runtime provides next to the layer (/var/runtime).
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
# The ml layer's import packages (layers/ml/requirements.txt and their dependencies), with their bundled
# shared libraries.
ML_PACKAGES = ("numpy", "numpy.libs", "scipy", "scipy.libs", "sklearn", "joblib", "threadpoolctl")
ELF_MACHINE = {"aarch64": 183, "x86_64": 62}
REGION = "us-east-1"


def pinned_requirements(layer_dir: Path) -> dict[str, str]:
    pins = {}
    for line in (layer_dir / "requirements.txt").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\s*([A-Za-z0-9._-]+)\s*==\s*([^\s;#]+)", line)
        if match:
            pins[re.sub(r"[-_.]+", "_", match[1]).lower()] = match[2]
    return pins


def python_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*.py") if "__pycache__" not in p.parts}


def elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", f"{path.name} is not an ELF file"
    return int.from_bytes(header[18:20], "little")


# -- the layer CDK deploys ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def target_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The common layer bundled by CDK (local bundling, no Docker) for the Lambda runtime."""
    import aws_cdk as cdk
    from aws_cdk import aws_lambda as lambda_

    from infra.bundling import layer_code

    outdir = tmp_path_factory.mktemp("bundled.out")
    app = cdk.App(outdir=str(outdir))
    stack = cdk.Stack(app, "CommonLayerOnly")
    lambda_.LayerVersion(stack, "Common", code=layer_code(COMMON_LAYER, include_package=True))
    app.synth()
    template = json.loads((outdir / "CommonLayerOnly.template.json").read_text(encoding="utf-8"))
    (layer,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::LayerVersion"]
    staged = outdir / f"asset.{layer['Properties']['Content']['S3Key'].removesuffix('.zip')}"
    assert staged.is_dir(), "CDK staged no bundled layer"
    return staged / "python"


def test_target_layer_holds_pydantic_core_for_cpython_314_on_arm64(target_layer: Path) -> None:
    extension = target_layer / "pydantic_core" / "_pydantic_core.cpython-314-aarch64-linux-gnu.so"
    assert extension.is_file(), sorted(p.name for p in (target_layer / "pydantic_core").iterdir())
    assert elf_machine(extension) == ELF_MACHINE["aarch64"]
    for library in target_layer.rglob("*.so"):
        assert elf_machine(library) == ELF_MACHINE["aarch64"], library.relative_to(target_layer)
        if ".cpython-" in library.name:
            assert ".cpython-314-aarch64-linux-gnu.so" in library.name, library.relative_to(target_layer)


def test_target_layer_has_the_pinned_distributions(target_layer: Path) -> None:
    installed = {}
    for dist_info in target_layer.glob("*.dist-info"):
        name, version = dist_info.name.removesuffix(".dist-info").rsplit("-", 1)
        installed[re.sub(r"[-_.]+", "_", name).lower()] = version
    pins = pinned_requirements(COMMON_LAYER)
    assert pins, "layers/common/requirements.txt pins nothing"
    assert {name: installed.get(name) for name in pins} == pins


def test_target_layer_ships_the_ecrm_package_without_bytecode(target_layer: Path) -> None:
    assert (target_layer / "ecrm" / "__init__.py").is_file()
    assert python_files(target_layer / "ecrm") == python_files(PACKAGE)
    assert not [p for p in target_layer.rglob("__pycache__")], "bytecode caches in the layer"
    assert not [p for p in target_layer.rglob("*.pyc")], "bytecode in the layer"


def operator_modules_in(layer: Path) -> list[str]:
    """The layer's files that belong to the operator package: its own folder, or any of its modules under `ecrm`
    (package markers aside: both packages have an `analysis/__init__.py`)."""
    operator = {name for name in python_files(OPERATOR_PACKAGE) if not name.endswith("__init__.py")}
    return sorted(
        [p.relative_to(layer).as_posix() for p in layer.glob("ecrm_ops*")]
        + [f"ecrm/{name}" for name in python_files(layer / "ecrm") & operator]
    )


def test_target_layer_holds_no_module_of_the_operator_package(target_layer: Path) -> None:
    assert operator_modules_in(target_layer) == []


def test_the_package_copied_into_the_layer_holds_no_module_of_the_operator_package(tmp_path: Path) -> None:
    from infra.bundling import copy_package

    # Given the package step of the layer's bundling, on its own
    copy_package(tmp_path)
    # Then the layer gets the runtime package and nothing of the operator package
    assert (tmp_path / "ecrm" / "__init__.py").is_file()
    assert operator_modules_in(tmp_path) == []
    # ... which the check would see if it were there
    (tmp_path / "ecrm" / "tour").mkdir()
    (tmp_path / "ecrm" / "tour" / "context.py").write_text("")
    assert operator_modules_in(tmp_path) == ["ecrm/tour/context.py"]


# -- functions running on a layer built for this machine ---------------------------------------
def host_platforms() -> tuple[str, ...]:
    machine = {"arm64": "aarch64", "amd64": "x86_64"}.get(platform.machine().lower(), platform.machine().lower())
    return f"manylinux2014_{machine}", f"manylinux_2_28_{machine}"


@pytest.fixture(scope="module")
def host_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The common layer's `python/`, built like the real one but for this interpreter."""
    from infra.bundling import copy_package, pip_install

    target = tmp_path_factory.mktemp("host-layer") / "python"
    pip_install(
        COMMON_LAYER / "requirements.txt",
        target,
        python_version=f"{sys.version_info.major}.{sys.version_info.minor}",
        platforms=host_platforms(),
    )
    copy_package(target)
    # Compiled once here rather than by each of the many probes below (`-B` stops a probe writing bytecode,
    # not reading it): the same imports, a fraction of the time.
    compileall.compile_dir(target, quiet=1, workers=0)
    return target


def link_packages(target: Path, names: tuple[str, ...]) -> Path:
    """A directory of links to this venv's installs of the named packages or modules, and of the named wheel
    library folders (`numpy.libs`; a wheel that bundles none has none)."""
    for name in names:
        if name.endswith(".libs"):
            source = Path(sysconfig.get_paths()["purelib"]) / name
            if not source.exists():
                continue
        else:
            spec = importlib.util.find_spec(name)
            assert spec is not None, f"{name} is not installed"
            assert spec.origin, f"{name} has no origin"
            origin = Path(spec.origin)
            source = origin.parent if spec.submodule_search_locations else origin
        (target / source.name).symlink_to(source, target_is_directory=source.is_dir())
    return target


@pytest.fixture(scope="module")
def ml_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stand-in for the ml layer: links to this venv's numpy, scipy and scikit-learn, nothing else."""
    return link_packages(tmp_path_factory.mktemp("ml-layer"), ML_PACKAGES)


@pytest.fixture(scope="module")
def lambda_runtime(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stand-in for /var/runtime: links to this venv's boto3 and its dependencies, nothing else."""
    return link_packages(tmp_path_factory.mktemp("var-runtime"), RUNTIME_PACKAGES)


def function_layers(function: dict[str, Any], common: Path, ml: Path) -> list[Path]:
    """The stand-ins of the layers the function declares, in its order (the common layer always)."""
    declared = [ref(layer) or "" for layer in function["Properties"].get("Layers", [])]
    return [common, *(ml for name in declared if "MlLayer" in name)]


def function_environment(function: dict[str, Any], logical_id: str) -> dict[str, str]:
    """The function's configured variables (references become their logical ids), plus what Lambda sets."""
    props = function["Properties"]
    configured = {
        name: value if isinstance(value, str) else (ref(value) or json.dumps(value))
        for name, value in props.get("Environment", {}).get("Variables", {}).items()
    }
    return {
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.14",
        "AWS_LAMBDA_FUNCTION_NAME": logical_id,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(props.get("MemorySize", 128)),
        "_HANDLER": props["Handler"],
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "LANG": "en_US.UTF-8",
        **configured,
    }


def probe(
    tmp_path: Path,
    *,
    task_root: Path,
    layers: list[Path],
    runtime: Path,
    module: str,
    environment: dict[str, str],
    event: Path | None = None,
) -> dict[str, Any]:
    spec_file, result_file = tmp_path / f"{module}.spec.json", tmp_path / f"{module}.result.json"
    spec_file.write_text(
        json.dumps(
            {
                "task_root": str(task_root),
                "layers": [str(layer) for layer in layers],
                "runtime": str(runtime),
                "module": module,
                "event": str(event) if event else None,
                "result": str(result_file),
            }
        ),
        encoding="utf-8",
    )
    # -B: /var/task and /opt are read-only in Lambda, and the staged asset is shared with other tests.
    completed = subprocess.run(
        [sys.executable, "-I", "-S", "-B", str(PROBE), str(spec_file)],
        env={**environment, "LAMBDA_TASK_ROOT": str(task_root)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert result_file.exists(), completed.stderr
    result: dict[str, Any] = json.loads(result_file.read_text(encoding="utf-8"))
    result["stdout"] = completed.stdout
    return result


@pytest.fixture(scope="module")
def probes(
    synthesized: Synthesized,
    host_layer: Path,
    ml_layer: Path,
    lambda_runtime: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, dict[str, Any]]:
    """Every function of the stack, imported from its staged code asset; the API also invoked."""
    results = {}
    for logical_id, function in synthesized.resources("AWS::Lambda::Function").items():
        module = function["Metadata"]["ecrm:module"]
        results[logical_id] = probe(
            tmp_path_factory.mktemp(module),
            task_root=synthesized.asset_dir(function["Properties"]["Code"]["S3Key"]),
            layers=function_layers(function, host_layer, ml_layer),
            runtime=lambda_runtime,
            module=module,
            environment=function_environment(function, logical_id),
            event=HEALTH_EVENT if module == "api" else None,
        )
    assert results, "no function to probe"
    return results


def test_every_function_imports_from_its_bundle_alone(
    probes: dict[str, dict[str, Any]], host_layer: Path, lambda_runtime: Path
) -> None:
    for logical_id, result in probes.items():
        assert "error" not in result, f"{logical_id}: {result['error']}\n{result['stdout']}"
        assert not result["site_imported"], "site-packages leaked into the probe"
        leaked = [entry for entry in result["sys_path"] if entry and Path(entry).resolve().is_relative_to(REPO_ROOT)]
        assert not leaked, f"{logical_id}: the repository is on sys.path: {leaked}"
        origins = result["origins"]
        for name in ("ecrm", "pydantic", "pydantic_core", "aws_lambda_powertools"):
            assert origins[name], f"{logical_id}: {name} was not imported"
            assert Path(origins[name]).is_relative_to(host_layer), f"{logical_id}: {name} from {origins[name]}"
        if origins["boto3"]:
            assert Path(origins["boto3"]).is_relative_to(lambda_runtime), logical_id


def test_api_answers_the_public_health_request_from_its_bundle(
    probes: dict[str, dict[str, Any]], synthesized: Synthesized
) -> None:
    (api,) = [
        lid
        for lid, fn in synthesized.resources("AWS::Lambda::Function").items()
        if fn["Metadata"] == {"ecrm:source": "functions/platform", "ecrm:module": "api"}
    ]
    result = probes[api]
    assert "error" not in result, f"{result['error']}\n{result['stdout']}"
    response = result["response"]
    assert response["statusCode"] == 200, response
    assert json.loads(response["body"])["status"] == "ok"


def test_functions_start_with_tracing_on(
    synthesized: Synthesized, host_layer: Path, lambda_runtime: Path, tmp_path: Path
) -> None:
    (logical_id, function), *_ = [
        (lid, fn)
        for lid, fn in synthesized.resources("AWS::Lambda::Function").items()
        if fn["Metadata"] == {"ecrm:source": "functions/platform", "ecrm:module": "api"}
    ]
    result = probe(
        tmp_path,
        task_root=synthesized.asset_dir(function["Properties"]["Code"]["S3Key"]),
        layers=[host_layer],
        runtime=lambda_runtime,
        module="api",
        environment={**function_environment(function, logical_id), "ECRM_TRACING": "true"},
    )
    assert "error" not in result, result["error"]
