"""What a cold start may not do: build models it does not need, or load libraries only some paths need.

- every pydantic model of the runtime and the handlers derives from `ecrm.core.contract.Contract`, so it
  is built on first use (read from the source with `ast`: a model added later is covered);
- importing an API handler, as Lambda does, builds no model but the function's settings and loads none of
  the libraries that only some requests need (phone parsing, templating) or that belong to jobs (numpy,
  pandas, scikit-learn, DuckDB). The cold-start benchmark (`tests/bench/test_cold_start.py`) says what
  that is worth in time; this says it stays so.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from ecrm.core.contract import Contract

from tests.handler_environment import HANDLER_ENVIRONMENT

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*(ROOT / "shared" / "ecrm").rglob("*.py"), *(ROOT / "functions").rglob("*.py")])
API_HANDLERS = sorted((ROOT / "functions").glob("*/api.py"))
NOT_ON_AN_API_IMPORT = ("phonenumbers", "jinja2", "numpy", "pandas", "sklearn", "scipy", "duckdb", "pyarrow")
ENV = HANDLER_ENVIRONMENT
# Imports a handler module as the Lambda runtime does (its directory and the layer's package first on the
# path), then reports the models built and the top-level packages loaded.
PROBE = """
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
__import__("api")
from ecrm.core.config import FunctionConfig
from ecrm.core.contract import Contract
def subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)
built = sorted({
    c.__qualname__ for c in subclasses(Contract) if c.__pydantic_complete__ and not issubclass(c, FunctionConfig)
})
print(json.dumps({"built": built, "packages": sorted({name.split(".")[0] for name in sys.modules})}))
"""


def direct_base_models(source: str) -> list[str]:
    """Classes in `source` that subclass pydantic's `BaseModel` itself rather than `Contract`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and node.name != "Contract":
            for base in node.bases:
                name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", None)
                if name == "BaseModel":
                    found.append(node.name)
    return found


def test_every_model_of_the_runtime_and_the_handlers_is_a_contract() -> None:
    # Given every module of the runtime package and of the handlers
    # When their class statements are read
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in SOURCES
        for name in direct_base_models(path.read_text(encoding="utf-8"))
    ]
    # Then none derives from BaseModel directly
    assert not offenders, f"derive these from ecrm.core.contract.Contract (built on first use): {offenders}"


def test_the_checker_sees_a_model_that_is_not_a_contract() -> None:
    # Given a module with one model on BaseModel and one on Contract
    source = "class Eager(BaseModel): ...\n\nclass Lazy(Contract): ...\n\nclass Too(pydantic.BaseModel): ..."
    # Then the checker names the two on BaseModel
    assert direct_base_models(source) == ["Eager", "Too"]


def test_a_contract_is_built_on_first_use_and_keeps_a_subclass_config() -> None:
    # Given a contract with its own config
    from pydantic import ConfigDict, ValidationError

    class Strict(Contract):
        model_config = ConfigDict(extra="forbid")
        x: int

    # Then it is not built until used, keeps its own setting, and validates as any model does
    assert Strict.model_config.get("defer_build") is True
    assert not Strict.__pydantic_complete__
    with pytest.raises(ValidationError) as refused:
        Strict.model_validate({"x": 1, "y": 2})
    assert [e["type"] for e in refused.value.errors()] == ["extra_forbidden"]
    assert Strict.__pydantic_complete__


@pytest.mark.parametrize("handler", API_HANDLERS, ids=lambda p: p.parent.name)
def test_importing_an_api_handler_builds_no_model_and_loads_no_library_of_another_path(handler: Path) -> None:
    # Given a fresh interpreter, as a cold start
    # When the handler module is imported the way Lambda imports it
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(handler.parent), str(ROOT / "shared")],
        capture_output=True,
        text=True,
        check=False,
        env=ENV,
        cwd=handler.parent,
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.splitlines()[-1])
    # Then no model but its settings was built, and no library of another path was loaded
    assert loaded["built"] == []
    assert sorted(set(loaded["packages"]) & set(NOT_ON_AN_API_IMPORT)) == []
