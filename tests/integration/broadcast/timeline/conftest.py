"""The customer store's moto table and service: broadcast's events land on its timeline."""

from tests.integration.customers.conftest import clock, dynamodb, publisher, service  # noqa: F401 (fixtures)
