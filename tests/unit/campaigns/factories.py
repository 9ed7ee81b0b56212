"""Small valid campaigns and journeys for the engine's tests."""

from __future__ import annotations

from typing import Any

from ecrm.campaigns.models import CampaignIn, JourneyIn

EMAIL = {"email": {"subject": "Hello {{ profile.first_name }}", "text": "Our news"}}


def campaign_in(**overrides: Any) -> CampaignIn:
    body: dict[str, Any] = {
        "name": "Spring sale",
        "audience": {"customer_ids": [f"c{i}" for i in range(20)]},
        "variants": [{"key": "a", "share": 45, "content": EMAIL}, {"key": "b", "share": 45, "content": EMAIL}],
        "holdout_share": 10,
    }
    body.update(overrides)
    return CampaignIn.model_validate(body)


def welcome_journey(**overrides: Any) -> JourneyIn:
    """Welcome, wait two days, then a reminder to those who did not open and a thank-you to those who did."""
    body: dict[str, Any] = {
        "name": "Welcome series",
        "trigger": {"event": "CustomerCreated", "source": "ecrm.customers"},
        "goal_event": "OrderPlaced",
        "steps": [
            {"type": "send", "id": "welcome", "content": EMAIL, "next": "wait"},
            {"type": "wait", "id": "wait", "seconds": 2 * 86400, "next": "opened"},
            {
                "type": "branch",
                "id": "opened",
                "condition": {"kind": "engagement", "event": "MessageOpened"},
                "then": "thanks",
                "otherwise": "reminder",
            },
            {"type": "send", "id": "thanks", "content": EMAIL, "next": None},
            {"type": "send", "id": "reminder", "content": EMAIL, "next": None},
        ],
    }
    body.update(overrides)
    return JourneyIn.model_validate(body)
