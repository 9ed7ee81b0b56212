"""This engine's part of an erasure request: loyalty deleted, orders detached from the customer, then acknowledged.

The acknowledgement is published after the work (a lost one is sent again by the queue's retry of the
request, which finds nothing left to change).
"""

from __future__ import annotations

from ecrm.core.config import PublishingConfig, load_config
from ecrm.core.erasure_consumer import erasure_handler
from ecrm.transactions.wiring import TransactionsConfig, erasure_for

config = load_config(TransactionsConfig)
handler = erasure_handler(config, load_config(PublishingConfig).event_bus_name, lambda: erasure_for(config))
