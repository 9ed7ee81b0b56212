"""Proofs: a campaign's test sends to staff addresses (the `test` operation of broadcast's bulk function).

A proof is rendered with sample data and handed straight to its channel's adapter for the raw address given,
as a transactional message: no customer card is read, no message is stored and no event is published, so no
campaign report, insight or frequency cap counts it. Its key is taken before the provider call and given back
when the provider refuses or fails, so a retried batch sends each proof once; a crash between the two leaves
the proof unsent (a test, not a customer's message: the marketer sends another with a new key).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from ecrm.broadcast.channels.base import ChannelAdapter, ChannelError, OutboundMessage
from ecrm.broadcast.models import TestMessage, TestOutcome
from ecrm.broadcast.rendering import RenderFailed, render_parts
from ecrm.broadcast.store import BroadcastStore
from ecrm.core.clock import Clock

PROOF_CUSTOMER = "proof"  # stands where a customer id would: a proof has no customer


class ProofSender:
    def __init__(self, store: BroadcastStore, adapters: Mapping[str, ChannelAdapter], clock: Clock) -> None:
        self.store = store
        self.adapters = adapters
        self.clock = clock

    def send(self, proofs: Sequence[TestMessage]) -> list[TestOutcome]:
        return [self._send(proof) for proof in proofs]

    def _send(self, proof: TestMessage) -> TestOutcome:
        adapter = self.adapters.get(proof.channel)
        if adapter is None:
            return TestOutcome(key=proof.key, status="failed", reason=f"no {proof.channel} channel here")
        try:
            rendered = render_parts(proof.content, profile=proof.profile, data=proof.data)
        except RenderFailed as exc:
            return TestOutcome(key=proof.key, status="failed", reason=f"render_error: {str(exc)[:200]}")
        if not self.store.claim_test_send(proof.key, self.clock.now()):
            return TestOutcome(key=proof.key, status="already_sent")
        message_id = "proof_" + hashlib.sha256(proof.key.encode()).hexdigest()[:26]
        outbound = OutboundMessage(
            message_id=message_id,
            customer_id=PROOF_CUSTOMER,
            channel=proof.channel,
            address=proof.address,
            purpose="transactional",
            topic=None,
            content=rendered,
            tags={"message_id": message_id, "test": "true"},
        )
        try:
            adapter.send(outbound)
        except ChannelError as exc:
            self.store.release_test_send(proof.key)
            return TestOutcome(key=proof.key, status="failed", reason=exc.code or exc.reason[:200])
        except Exception:
            self.store.release_test_send(proof.key)
            raise
        return TestOutcome(key=proof.key, status="sent")
