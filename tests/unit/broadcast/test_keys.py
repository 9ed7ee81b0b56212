"""Message ids are their keys; fingerprints ignore key order; the queue writer retries what SQS refused."""

from __future__ import annotations

from typing import Any

import pytest
from ecrm.broadcast.keys import fingerprint_of, message_id_for
from ecrm.broadcast.wiring import SqsChannelQueues
from ecrm.core.errors import ServiceUnavailable
from ecrm.core.ids import is_id
from hypothesis import given
from hypothesis import strategies as st


@given(source=st.text(min_size=1), customer=st.text(min_size=1), step=st.text(min_size=1))
def test_a_message_id_is_a_pure_function_of_its_key(source: str, customer: str, step: str) -> None:
    first = message_id_for(source, customer, step)
    assert first == message_id_for(source, customer, step)
    assert is_id(first, "msg_")


def test_different_keys_are_different_messages() -> None:
    ids = {message_id_for("campaign:c1", f"cus_{n}", str(s)) for n in range(200) for s in range(3)}
    assert len(ids) == 600


def test_a_fingerprint_ignores_the_order_of_keys() -> None:
    assert fingerprint_of({"a": 1, "b": {"c": 2, "d": 3}}) == fingerprint_of({"b": {"d": 3, "c": 2}, "a": 1})
    assert fingerprint_of({"a": 1}) != fingerprint_of({"a": 2})


class RefusingSqs:
    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.accepted: list[str] = []

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        failed = []
        for entry in Entries:
            if self.refusals > 0:
                self.refusals -= 1
                failed.append({"Id": entry["Id"], "Code": "InternalError", "SenderFault": False})
            else:
                self.accepted.append(entry["MessageBody"])
        return {"Successful": [], "Failed": failed}


def test_the_queue_writer_retries_refused_entries_and_raises_when_they_stay_refused() -> None:
    sqs = RefusingSqs(refusals=3)
    SqsChannelQueues(sqs, {"email": "url"}).enqueue("email", [{"n": n} for n in range(25)])
    assert len(sqs.accepted) == 25
    with pytest.raises(ServiceUnavailable):
        SqsChannelQueues(RefusingSqs(refusals=100), {"email": "url"}).enqueue("email", [{"n": 1}])
    with pytest.raises(ServiceUnavailable):
        SqsChannelQueues(sqs, {}).enqueue("sms", [{"n": 1}])
