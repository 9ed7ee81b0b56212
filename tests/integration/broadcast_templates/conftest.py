"""The broadcast engine of `tests.integration.broadcast` (moto's DynamoDB, doubles of contacts, queues, channels)."""

from tests.integration.broadcast.conftest import engine  # noqa: F401 - the fixture, shared
