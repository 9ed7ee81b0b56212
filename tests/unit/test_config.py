"""Typed environment configuration read once at cold start."""

from __future__ import annotations

import pytest
from ecrm.core.config import FunctionConfig, PublishingConfig, load_config
from ecrm.core.errors import ConfigurationError


class SenderConfig(PublishingConfig):
    """A function with settings of its own, as an engine would declare them."""

    sender_table_name: str
    batch_size: int = 10


def test_values_are_read_from_upper_case_variables():
    # Given the environment of a deployed function
    environ = {
        "EVENT_BUS_NAME": "ecrm",
        "SENDER_TABLE_NAME": "ecrm-sender",
        "BATCH_SIZE": "25",
        "ECRM_STAGE": "prod",
        "PATH": "/usr/bin",
    }

    # When the config is loaded
    config = load_config(SenderConfig, environ)

    # Then every field is typed, defaults fill the rest and unrelated variables are ignored
    assert config.event_bus_name == "ecrm"
    assert config.sender_table_name == "ecrm-sender"
    assert config.batch_size == 25
    assert config.ecrm_stage == "prod"
    assert config.ecrm_tracing is False
    assert config.powertools_service_name == "ecrm"


def test_a_missing_variable_is_named_in_upper_case():
    # Given an environment without the bus name
    environ = {"SENDER_TABLE_NAME": "ecrm-sender"}

    # When / Then loading fails and says which variable is missing
    with pytest.raises(ConfigurationError) as caught:
        load_config(SenderConfig, environ)
    assert "EVENT_BUS_NAME" in caught.value.detail
    assert "SenderConfig" in caught.value.detail


def test_every_missing_variable_is_reported_at_once():
    # Given / When an empty environment
    with pytest.raises(ConfigurationError) as caught:
        load_config(SenderConfig, {})

    # Then both required variables are named
    assert "EVENT_BUS_NAME" in caught.value.detail
    assert "SENDER_TABLE_NAME" in caught.value.detail


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("1", True),
        ("yes", True),
        ("on", True),
        ("TRUE", True),
        ("false", False),
        ("0", False),
        ("no", False),
        ("off", False),
    ],
)
def test_boolean_variables_parse(raw, expected):
    # Given / When
    config = load_config(FunctionConfig, {"ECRM_TRACING": raw})

    # Then
    assert config.ecrm_tracing is expected


def test_an_invalid_value_is_named_with_its_variable():
    # Given a boolean that is not one
    environ = {"ECRM_TRACING": "sometimes"}

    # When / Then
    with pytest.raises(ConfigurationError) as caught:
        load_config(FunctionConfig, environ)
    assert "ECRM_TRACING" in caught.value.detail


def test_the_config_is_frozen():
    # Given a loaded config
    config = load_config(FunctionConfig, {})

    # When / Then it cannot be changed after cold start
    with pytest.raises(ValueError, match="frozen"):
        config.ecrm_stage = "prod"  # type: ignore[misc]


def test_the_process_environment_is_the_default_source(monkeypatch):
    # Given a variable in the process environment
    monkeypatch.setenv("ECRM_STAGE", "staging")

    # When no mapping is passed
    config = load_config(FunctionConfig)

    # Then the process environment is read
    assert config.ecrm_stage == "staging"
