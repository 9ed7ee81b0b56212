"""This engine's part of an erasure request: the customer's records deleted, messages detached, suppressions
hashed, then acknowledged.

The acknowledgement is published after the work (a lost one is sent again by the queue's retry of the
request, which finds nothing left to change).
"""

from __future__ import annotations

from ecrm.broadcast.wiring import BroadcastConfig, erasure_for
from ecrm.core.config import load_config
from ecrm.core.erasure_consumer import erasure_handler

config = load_config(BroadcastConfig)
handler = erasure_handler(config, config.event_bus_name, lambda: erasure_for(config))
