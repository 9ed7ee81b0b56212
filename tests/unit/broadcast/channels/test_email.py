"""The email adapter: MIME that parses, RFC 8058 on marketing mail only, tags, tracking, error classes."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, cast

import pytest
from ecrm.broadcast.channels.base import ChannelError, OutboundMessage
from ecrm.broadcast.channels.email import EmailAdapter, ascii_sender, text_from_html, untracked_links
from ecrm.core.clock import FixedClock

from tests.unit.broadcast.channels.fakes import MESSAGE_ID, FakeClient, message, provider_error

SENDER = "Example Shop <news@example.com>"
UNSUBSCRIBE = "https://www.example.com/u/abc.def.ghi"
PREFERENCES = "https://www.example.com/p/abc.def.ghi"
CONTENT = {
    "subject": "Les soldes d\u2019hiver ☃ arrivent",
    "html": '<html><body><p>Bonjour Émilie</p><a href="https://www.example.com/w">Voir</a></body></html>',
    "text": "Bonjour Émilie\nhttps://www.example.com/w",
}


def adapter(client: FakeClient, **extra: Any) -> EmailAdapter:
    clock = FixedClock(datetime(2026, 11, 23, 10, 15, tzinfo=UTC))
    return EmailAdapter(lambda: client, sender=SENDER, configuration_set="ecrm-marketing", clock=clock, **extra)


def marketing(**extra: Any) -> OutboundMessage:
    fields: dict[str, Any] = {
        "address": "emilie@example.com",
        "content": CONTENT,
        "purpose": "marketing",
        "topic": "newsletter",
        "unsubscribe_url": UNSUBSCRIBE,
        "preferences_url": PREFERENCES,
    }
    return message("email", **(fields | extra))


def sent_mime(client: FakeClient) -> EmailMessage:
    raw = client.only("send_email")["Content"]["Raw"]["Data"]
    return cast(EmailMessage, email.message_from_bytes(raw, policy=email.policy.default))


def part(mime: EmailMessage, subtype: str) -> str:
    body = mime.get_body(preferencelist=(subtype,))
    assert body is not None
    return str(cast(EmailMessage, body).get_content()).replace("\r\n", "\n")


def test_marketing_mail_is_multipart_alternative_with_one_click_unsubscribe() -> None:
    client = FakeClient(send_email={"MessageId": "0100019a-ses"})
    result = adapter(client).send(marketing())

    assert result.provider_message_id == "0100019a-ses"
    mime = sent_mime(client)
    assert mime.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in mime.iter_parts()] == ["text/plain", "text/html"]
    assert mime["Subject"] == CONTENT["subject"]
    assert "=?utf-8?" in client.only("send_email")["Content"]["Raw"]["Data"].decode("ascii").lower()
    assert mime["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
    assert mime["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mime["Message-ID"] == f"<{MESSAGE_ID}@example.com>"
    assert mime["Date"] == "Mon, 23 Nov 2026 10:15:00 +0000"
    for subtype in ("plain", "html"):
        assert PREFERENCES in part(mime, subtype)
        assert UNSUBSCRIBE in part(mime, subtype)
    assert "Bonjour Émilie" in part(mime, "plain")


def test_transactional_mail_carries_no_list_headers_nor_footer() -> None:
    client = FakeClient(send_email={"MessageId": "m"})
    adapter(client).send(message("email", "emilie@example.com", CONTENT))

    mime = sent_mime(client)
    assert mime["List-Unsubscribe"] is None
    assert mime["List-Unsubscribe-Post"] is None
    assert "unsubscribe" not in part(mime, "plain").lower()


def test_a_mailto_target_joins_the_https_one_when_configured() -> None:
    client = FakeClient(send_email={"MessageId": "m"})
    adapter(client, unsubscribe_mailto="unsubscribe@example.com").send(marketing())
    assert sent_mime(client)["List-Unsubscribe"] == (
        f"<{UNSUBSCRIBE}>, <mailto:unsubscribe@example.com?subject=unsubscribe>"
    )


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"unsubscribe_url": None}, "no_unsubscribe"),
        ({"unsubscribe_url": "http://www.example.com/u"}, "no_unsubscribe"),
        ({"preferences_url": None}, "no_preferences"),
        ({"address": "not-an-address"}, "invalid_address"),
        ({"address": "a@example.com\r\nBcc: b@example.com"}, "invalid_address"),
        ({"content": {"subject": "s"}}, "missing_content"),
        ({"content": {"html": "<p>x</p>"}}, "missing_content"),
    ],
)
def test_an_unsendable_message_is_a_permanent_error_and_no_call(extra: dict[str, Any], code: str) -> None:
    client = FakeClient()
    with pytest.raises(ChannelError) as raised:
        adapter(client).send(marketing(**extra))
    assert raised.value.permanent
    assert raised.value.code == code
    assert client.calls == []


def test_tags_carry_the_message_id_and_the_configuration_set_is_used() -> None:
    client = FakeClient(send_email={"MessageId": "m"})
    adapter(client).send(marketing(tags={"message_id": MESSAGE_ID, "campaign": "winter sale!", "step": "2"}))
    request = client.only("send_email")
    assert request["ConfigurationSetName"] == "ecrm-marketing"
    assert request["EmailTags"] == [{"Name": "message_id", "Value": MESSAGE_ID}, {"Name": "step", "Value": "2"}]
    assert request["Destination"] == {"ToAddresses": ["emilie@example.com"]}


def test_tracking_off_is_disabled_for_this_message_and_on_every_link() -> None:
    client = FakeClient(send_email={"MessageId": "m"})
    adapter(client, untracked_configuration_set="ecrm-untracked").send(marketing(tracking=False))
    assert client.only("send_email")["ConfigurationSetName"] == "ecrm-untracked"
    assert client.only("send_email")["ConfigurationOverrides"] == {
        "Tracking": {"OpenTrackingEnabled": "DISABLED", "ClickTrackingEnabled": "DISABLED"}
    }
    html = part(sent_mime(client), "html")
    assert html.count("<a ses:no-track") == html.count("<a ") == 3


def test_tracking_on_is_enabled_but_the_footer_links_are_never_tracked() -> None:
    client = FakeClient(send_email={"MessageId": "m"})
    adapter(client, untracked_configuration_set="ecrm-untracked").send(marketing(tracking=True))
    assert client.only("send_email")["ConfigurationSetName"] == "ecrm-marketing"
    assert client.only("send_email")["ConfigurationOverrides"] == {
        "Tracking": {"OpenTrackingEnabled": "ENABLED", "ClickTrackingEnabled": "ENABLED"}
    }
    html = part(sent_mime(client), "html")
    assert '<a href="https://www.example.com/w">' in html
    assert f'<a ses:no-track href="{UNSUBSCRIBE}">' in html
    assert f'<a ses:no-track href="{PREFERENCES}">' in html


def test_a_missing_text_part_is_derived_from_the_html() -> None:
    client = FakeClient(send_email={"MessageId": "m"})
    adapter(client).send(message("email", "a@example.com", {"subject": "s", "html": CONTENT["html"]}))
    assert part(sent_mime(client), "plain").startswith("Bonjour Émilie\nVoir (https://www.example.com/w)")


def test_a_non_ascii_sender_name_is_encoded_for_ses_and_reads_back() -> None:
    client = FakeClient(send_email={"MessageId": "m"})
    clock = FixedClock(datetime(2026, 11, 23, 10, 15, tzinfo=UTC))
    sender = "Boutique Émilie <news@example.com>"
    EmailAdapter(lambda: client, sender=sender, configuration_set=None, clock=clock).send(marketing())
    request = client.only("send_email")
    assert request["FromEmailAddress"].isascii()
    assert request["FromEmailAddress"].endswith("<news@example.com>")
    assert "ConfigurationSetName" not in request
    assert sent_mime(client)["From"] == sender
    assert ascii_sender("news@example.com") == "news@example.com"


def test_helpers() -> None:
    assert untracked_links('<a href="x">1</a><A class=y>2</A><a ses:no-track href="z">3</a><abbr>') == (
        '<a ses:no-track href="x">1</a><a ses:no-track class=y>2</A><a ses:no-track href="z">3</a><abbr>'
    )
    assert text_from_html("<style>p{}</style><p>One  two</p><br>three <a>x</a>") == "One two\nthree x"


@pytest.mark.parametrize(
    ("code", "permanent", "throttled"),
    [
        ("TooManyRequestsException", False, True),
        ("LimitExceededException", False, True),
        ("SendingPausedException", False, True),
        ("MessageRejected", True, False),
        ("BadRequestException", True, False),
        ("AccountSuspendedException", False, False),
        ("MailFromDomainNotVerifiedException", False, False),
        ("NotFoundException", False, False),
        ("InternalFailure", False, False),
    ],
)
def test_ses_errors_are_classified(code: str, permanent: bool, throttled: bool) -> None:
    client = FakeClient()
    client.errors["send_email"] = provider_error(code)
    with pytest.raises(ChannelError) as raised:
        adapter(client).send(marketing())
    assert (raised.value.permanent, raised.value.throttled, raised.value.code) == (permanent, throttled, code)


def test_a_connection_failure_is_transient() -> None:
    client = FakeClient()
    client.errors["send_email"] = ConnectionError("reset")
    with pytest.raises(ChannelError) as raised:
        adapter(client).send(marketing())
    assert not raised.value.permanent
    assert not raised.value.throttled
