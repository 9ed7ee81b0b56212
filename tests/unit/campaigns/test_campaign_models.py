"""Campaign definitions the run could not honour are refused when they are written (422), not at send time."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.unit.campaigns.factories import campaign_in


def test_an_auto_winner_does_not_combine_with_local_time() -> None:
    with pytest.raises(ValidationError, match="does not combine with a local_time"):
        campaign_in(
            auto_winner={"metric": "opens", "test_share": 20, "test_hours": 4},
            schedule={"kind": "local_time", "at": "2026-11-25T00:00:00+00:00", "local_time": "09:00:00"},
        )


def test_a_local_time_schedule_needs_its_day_and_time() -> None:
    with pytest.raises(ValidationError, match="needs at, local_time"):
        campaign_in(schedule={"kind": "local_time"})
