"""Which arm a recipient lands in: a pure function of the campaign and the customer.

The arm is read off a point in [0, 1) drawn from SHA-256 of `<salt>\\n<customer>`: the same customer
always lands in the same arm of the same campaign (a re-run, a resumed run, a dry run and the report
all agree without storing the assignment), and two campaigns draw independently. The holdout takes the
start of the interval, so changing the variants' shares never moves anyone into or out of it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ecrm.campaigns.models import HOLDOUT, CampaignIn

_SCALE = float(1 << 64)


@dataclass(frozen=True)
class Arm:
    key: str
    share: float  # percent


def unit_point(salt: str, customer_id: str) -> float:
    """A uniform point in [0, 1), the same for the same salt and customer."""
    digest = hashlib.sha256(f"{salt}\n{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def arms_of(campaign: CampaignIn) -> list[Arm]:
    """The holdout first (when it has a share), then the variants in their order."""
    arms = [Arm(HOLDOUT, campaign.holdout_share)] if campaign.holdout_share > 0 else []
    return arms + [Arm(v.key, v.share) for v in campaign.variants]


def pick(point: float, arms: Sequence[Arm]) -> str:
    """The arm whose slice of [0, 100) holds `point`; the last arm absorbs rounding at the top."""
    edge = 0.0
    for arm in arms:
        edge += arm.share
        if point * 100 < edge:
            return arm.key
    return arms[-1].key


def assign(campaign_id: str, customer_id: str, arms: Sequence[Arm]) -> str:
    return pick(unit_point(f"campaign:{campaign_id}", customer_id), arms)


def in_test_phase(campaign_id: str, customer_id: str, test_share: float) -> bool:
    """For an auto-winner: whether a treated recipient is in the test phase (drawn apart from the arm)."""
    return unit_point(f"campaign:{campaign_id}:test", customer_id) * 100 < test_share


def count_arms(campaign_id: str, customer_ids: Iterable[str], arms: Sequence[Arm]) -> dict[str, int]:
    counts = {arm.key: 0 for arm in arms}
    for customer_id in customer_ids:
        counts[assign(campaign_id, customer_id, arms)] += 1
    return counts
