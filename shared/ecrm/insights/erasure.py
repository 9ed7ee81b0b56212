"""This engine's part of an erasure request (GDPR Art. 17), then its acknowledgement.

Deleted: the customer's touches (`TOUCH#<customer>`: which campaign variants and journey steps they were sent,
when, and whether an order converted them), what an order is attributed by. Kept, naming nobody: the per-minute
counters and the markers of counted events (event ids). The lake's `message_outcomes` rows are deleted by
segmentation's lake eraser with the other lake tables (ADR 10).

A message event of the customer delivered after the erasure (a late provider event) writes a touch again; it
expires with the attribution window (`expires_at`), as every touch does. A redelivered request finds nothing.
"""

from __future__ import annotations

from ecrm.core.clock import Clock
from ecrm.core.erasure import CustomerErasureRequested
from ecrm.insights.models import InsightsDataErased
from ecrm.insights.store import InsightsStore

ENGINE = "insights"


class InsightsErasure:
    def __init__(self, store: InsightsStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def erase(self, request: CustomerErasureRequested) -> InsightsDataErased:
        for customer_id in dict.fromkeys([request.customer_id, *request.customer_ids]):
            self.store.forget_touches(customer_id)
        return InsightsDataErased(request_id=request.request_id, engine=ENGINE, erased_at=self.clock.now())
