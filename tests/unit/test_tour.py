"""The demo tour is one explicit list, assembled in one place from each engine's steps."""

from __future__ import annotations

import ast
from pathlib import Path

from ecrm_ops.tour import (
    analysis,
    broadcast,
    campaigns,
    collect,
    customers,
    personalization,
    platform,
    transactions,
)
from ecrm_ops.tour.run import TOUR

TOUR_PACKAGE = Path(__file__).resolve().parents[2] / "shared" / "ecrm_ops" / "tour"
# What an engine's steps may use of the tour package: the context, and the order history the tour backfills.
SHARED_BY_THE_STEPS = {"ecrm_ops.tour.context", "ecrm_ops.tour.order_history"}


def test_the_tour_is_each_engine_s_steps_in_order() -> None:
    engines = [platform, customers, collect, analysis, personalization, broadcast, transactions, campaigns]
    assert [step for engine in engines for step in engine.STEPS] == TOUR
    assert all(engine.STEPS for engine in engines)
    assert len({step.title for step in TOUR}) == len(TOUR), "two steps share a title"


def test_an_engine_s_steps_import_no_other_engine_s_steps_nor_the_runner() -> None:
    for path in sorted(TOUR_PACKAGE.glob("*.py")):
        if path.stem in {"__init__", "run"}:
            continue
        imported = {
            node.module
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ecrm_ops.tour")
        }
        assert imported <= SHARED_BY_THE_STEPS, f"{path.name} imports {sorted(imported - SHARED_BY_THE_STEPS)}"
