"""The layering contracts of ARCHITECTURE.md, read from the import statements of the code.

- the runtime package `ecrm` never imports `infra` or the operator package `ecrm_ops`;
- `ecrm.core` imports no engine (it is what engines stand on);
- an engine (a package of `ecrm` other than `core`) imports `ecrm.core` and other engines' `models`
  only: never their store, service, logic or any other module, nor a module of `ecrm` outside the
  engines and `core`;
- no import cycle between engines' packages (an engine's `models` importing another's counts);
- a handler under `functions/<engine>/` imports its own engine (any module), `ecrm.core` and other
  engines' `models` only.

Every import counts: at module level, inside functions (lazy) and under `TYPE_CHECKING`. The
checker is plain `ast`, so it reads the files without importing them, and it reports every
violation with its file and line. The tests at the end plant violations in a synthetic tree and
assert the checker reports them: a checker that always passes would fail there.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = "ecrm"
CORE = "core"
FORBIDDEN_IN_RUNTIME = ("infra", "ecrm_ops")


@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    importer: str  # dotted module name of the importing file
    target: str  # dotted module name imported (a module when the name is one, else its package)


@dataclass(frozen=True)
class Tree:
    """Where the packages live: `shared/` holds `ecrm` (and `ecrm_ops`), `functions/` the handlers."""

    shared: Path
    functions: Path


def module_name(path: Path, base: Path) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str, bases: list[Path]) -> bool:
    relative = Path(*name.split("."))
    return any((base / relative).with_suffix(".py").is_file() or (base / relative).is_dir() for base in bases)


def imports_of(path: Path, base: Path, bases: list[Path]) -> list[Import]:
    """Every import of the file, relative ones resolved; `from p import n` names `p.n` when that is a module."""
    importer = module_name(path, base)
    package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
    found: list[Import] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [Import(path, node.lineno, importer, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                source = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            for alias in node.names:
                candidate = f"{source}.{alias.name}"
                target = candidate if alias.name != "*" and _is_module(candidate, bases) else source
                found.append(Import(path, node.lineno, importer, target))
    return found


def _python_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.py") if "__pycache__" not in p.parts)


def engines_of(tree: Tree) -> set[str]:
    runtime = tree.shared / RUNTIME
    return {p.name for p in runtime.iterdir() if p.is_dir() and (p / "__init__.py").is_file() and p.name != CORE}


def _engine_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == RUNTIME else None


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _cross_engine_problem(target: str, own: str | None, engines: set[str]) -> str | None:
    """Why an engine's (or a handler's) import of `target` breaks the layering, or None."""
    if not _within(target, RUNTIME) or target == RUNTIME:
        return None  # the standard library, third parties, `ecrm` itself (its version)
    other = _engine_of(target)
    if other in (CORE, own):
        return None
    if other not in engines:
        return f"imports {target}, which is neither ecrm.core nor an engine"
    if target != f"{RUNTIME}.{other}.models" and not target.startswith(f"{RUNTIME}.{other}.models."):
        return f"imports {target}: another engine's modules other than its models"
    return None


def violations(tree: Tree) -> list[str]:
    """Every broken contract as `path:line: module ... why`, sorted."""
    bases = [tree.shared, tree.functions.parent]
    engines = engines_of(tree)
    problems: list[str] = []
    graph: dict[str, dict[str, Import]] = {engine: {} for engine in engines}

    def report(found: Import, why: str) -> None:
        where = (
            found.path.relative_to(tree.shared.parent) if found.path.is_relative_to(tree.shared.parent) else found.path
        )
        problems.append(f"{where}:{found.line}: {found.importer} {why}")

    for path in _python_files(tree.shared / RUNTIME):
        for found in imports_of(path, tree.shared, bases):
            if any(_within(found.target, forbidden) for forbidden in FORBIDDEN_IN_RUNTIME):
                report(found, f"imports {found.target}: the runtime package never imports infra or ecrm_ops")
                continue
            own = _engine_of(found.importer)
            if own is None or (own != CORE and own not in engines):
                continue  # ecrm/__init__.py, or a module of ecrm outside core and the engines (see below)
            if own == CORE:
                if _engine_of(found.target) in engines:
                    report(found, f"imports {found.target}: ecrm.core imports no engine")
                continue
            why = _cross_engine_problem(found.target, own, engines)
            if why:
                report(found, why)
            other = _engine_of(found.target)
            if other in engines and other != own:
                graph[own].setdefault(other, found)

    for engine_dir in sorted(p for p in tree.functions.iterdir() if p.is_dir() and p.name in engines):
        for path in _python_files(engine_dir):
            for found in imports_of(path, tree.functions.parent, bases):
                why = _cross_engine_problem(found.target, engine_dir.name, engines)
                if why:
                    report(found, why)

    problems += [f"import cycle between engines: {cycle}" for cycle in _cycles(graph)]
    return sorted(set(problems))


def _cycles(graph: dict[str, dict[str, Import]]) -> list[str]:
    """Each cycle of the engine graph once, with the import that makes each of its edges."""
    cycles: set[tuple[str, ...]] = set()
    described: list[str] = []

    def visit(node: str, trail: list[str]) -> None:
        for succ in sorted(graph.get(node, {})):
            if succ in trail:
                loop = trail[trail.index(succ) :]
                turn = loop.index(min(loop))
                key = tuple(loop[turn:] + loop[:turn])
                if key not in cycles:
                    cycles.add(key)
                    edges = [(a, key[(i + 1) % len(key)]) for i, a in enumerate(key)]
                    described.append(
                        " -> ".join([*key, key[0]])
                        + " ("
                        + "; ".join(
                            f"{graph[a][b].path.name}:{graph[a][b].line} {graph[a][b].target}" for a, b in edges
                        )
                        + ")"
                    )
            else:
                visit(succ, [*trail, succ])

    for start in sorted(graph):
        visit(start, [start])
    return described


# -- the contracts, on this repository ---------------------------------------------------------------------------
def test_the_code_keeps_the_layering_contracts() -> None:
    problems = violations(Tree(shared=ROOT / "shared", functions=ROOT / "functions"))
    assert not problems, "layering contracts broken:\n" + "\n".join(problems)


def test_the_checker_sees_every_engine_and_handler() -> None:
    tree = Tree(shared=ROOT / "shared", functions=ROOT / "functions")
    engines = engines_of(tree)
    assert {"customers", "analysis", "collect", "personalization", "platform"} <= engines
    assert {p.name for p in tree.functions.iterdir() if p.is_dir() and (p / "__init__.py").is_file()} <= engines


# -- the checker fails on planted violations ---------------------------------------------------------------------
def _write(base: Path, files: dict[str, str]) -> Tree:
    for name, text in files.items():
        path = base / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return Tree(shared=base / "shared", functions=base / "functions")


CLEAN = {
    "shared/ecrm/__init__.py": "",
    "shared/ecrm/core/__init__.py": "",
    "shared/ecrm/core/clock.py": "import datetime\n",
    "shared/ecrm/alpha/__init__.py": "",
    "shared/ecrm/alpha/models.py": "from ecrm.core import clock\n",
    "shared/ecrm/alpha/store.py": "from . import models\nfrom .models import X\n",
    "shared/ecrm/alpha/service.py": "from ecrm.alpha.store import S\nfrom ecrm.beta.models import B\n",
    "shared/ecrm/beta/__init__.py": "",
    "shared/ecrm/beta/models.py": "from ecrm.core.clock import now\n",
    "shared/ecrm/beta/service.py": "from ecrm.beta import store\nfrom .models import B\n",
    "shared/ecrm/beta/store.py": "",
    "functions/__init__.py": "",
    "functions/alpha/__init__.py": "",
    "functions/alpha/api.py": (
        "from ecrm import __version__\nfrom ecrm.alpha.service import S\nfrom ecrm.beta.models import B\n"
    ),
}


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    assert violations(_write(tmp_path, CLEAN)) == []


def test_the_runtime_importing_infra_or_the_operator_package_is_reported(tmp_path: Path) -> None:
    tree = _write(
        tmp_path,
        {
            **CLEAN,
            "shared/ecrm/alpha/store.py": "def later():\n    from infra.local import cloud\n",
            "shared/ecrm/core/clock.py": "import ecrm_ops.tour\n",
        },
    )
    problems = violations(tree)
    assert any("shared/ecrm/alpha/store.py:2: ecrm.alpha.store imports infra.local:" in p for p in problems)
    assert any("shared/ecrm/core/clock.py:1: ecrm.core.clock imports ecrm_ops.tour" in p for p in problems)


def test_an_engine_importing_another_engines_internals_is_reported(tmp_path: Path) -> None:
    tree = _write(
        tmp_path,
        {
            **CLEAN,
            "shared/ecrm/alpha/service.py": "from ecrm.beta.store import S\nfrom ecrm.beta import service\n",
            "shared/ecrm/alpha/logic.py": "from ecrm import shared_module\n",
            "shared/ecrm/shared_module.py": "",
            "shared/ecrm/core/clock.py": "from ecrm.alpha.models import X\n",
        },
    )
    problems = violations(tree)
    assert any("alpha/service.py:1: ecrm.alpha.service imports ecrm.beta.store" in p for p in problems)
    assert any("alpha/service.py:2: ecrm.alpha.service imports ecrm.beta.service" in p for p in problems)
    assert any("alpha/logic.py:1: ecrm.alpha.logic imports ecrm.shared_module" in p for p in problems)
    assert any("core/clock.py:1: ecrm.core.clock imports ecrm.alpha.models" in p for p in problems)


def test_a_cycle_between_engines_is_reported(tmp_path: Path) -> None:
    tree = _write(tmp_path, {**CLEAN, "shared/ecrm/beta/models.py": "from ecrm.alpha.models import A\n"})
    problems = violations(tree)
    assert [p for p in problems if "cycle" in p] == [
        "import cycle between engines: alpha -> beta -> alpha "
        "(service.py:2 ecrm.beta.models; models.py:1 ecrm.alpha.models)"
    ]


def test_a_handler_importing_another_engines_internals_is_reported(tmp_path: Path) -> None:
    tree = _write(tmp_path, {**CLEAN, "functions/alpha/on_event.py": "import ecrm.beta.service\n"})
    assert violations(tree) == [
        "functions/alpha/on_event.py:1: functions.alpha.on_event imports ecrm.beta.service: "
        "another engine's modules other than its models"
    ]
