"""The campaigns engine's moto table and services (`tests/integration/campaigns/conftest.py`), for journeys."""

from __future__ import annotations

from tests.integration.campaigns.conftest import engine

__all__ = ["engine"]
