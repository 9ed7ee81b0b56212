"""Email as SES v2 sends it, for the local cloud: the mailbox, events, simulator, suppression, quota.

moto 5.2.5's `sesv2` keeps Raw sends whole but builds no MIME for Simple content (its headers are
dropped), fails Template content with a 500, ignores configuration sets, list management and
email tags, emits no event, and has no event destinations, templates, bulk sends, suppression list
or account API. `install()` gives moto's `sesv2` handler, in this process (the local cloud runs its
moto server in process), these operations as SES answers them:

- `SendEmail` (Simple, Raw, Template) and `SendBulkEmail`: every message is kept with the MIME SES
  delivers (`infra.local.ses_mime`), readable by id, recipient and configuration set
  (`sent_mail`). The sender must be a verified identity (address or its domain), as in SES; the
  local account is out of the sandbox, so any recipient is accepted. A configuration set that
  does not exist is a `NotFoundException`; without one, the sender identity's default set is used.
- Configuration set event destinations (Create/Get/Update/Delete): each send publishes SES's
  events (`infra.local.ses_events`) to the enabled destinations whose `MatchingEventTypes` match.
  An EventBridge destination must name the default bus, as in SES.
- The mailbox simulator: `success@` delivers, `bounce@` bounces (Permanent/General), `ooto@`
  delivers and sends an automatic reply back to the sender (kept in the mailbox), `complaint@`
  delivers then complains, `suppressionlist@` bounces (Permanent/Suppressed); `+label`s are
  ignored, and simulator addresses never join the suppression list. Any other address is delivered.
  A message carrying the EICAR test string is rejected (`Reject`, "Bad content").
- Templates (Create/Get/List/Update/Delete/TestRender): a template whose data does not fit is
  accepted by `SendEmail` and ends in a Rendering Failure event, as in SES.
- The account-level suppression list and `PutAccountSuppressionAttributes`: a suppressed recipient
  is not delivered and bounces with `OnAccountSuppressionList`; a bounce or complaint adds the address
  when the reasons in force (the configuration set's, else the account's) say so. SES enables BOUNCE
  and COMPLAINT by default.
- `GetAccount` with its send quota: unlimited (-1) unless configured (`configure_send_quota`, or
  `POST /moto-api/local/mail/quota`); past the rate a send answers `TooManyRequestsException`
  ("Maximum sending rate exceeded."), past the 24-hour quota `LimitExceededException` ("Daily
  message quota exceeded."). Both count recipients, as SES does; simulator recipients do not count
  toward the 24-hour quota.

Opens, clicks, bounces and complaints of a delivered message are simulated by `infra.local.ses_mail`.
Delivery is synchronous: the events are on the bus when `SendEmail` answers (AWS: seconds later).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from moto.core.exceptions import JsonRESTError

from infra.local import ses_events

SIMULATOR_DOMAIN = "simulator.amazonses.com"
MAX_RECIPIENTS = 50
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
SUPPRESSED_DIAGNOSTIC = (
    "Amazon SES did not send the message to this address because it is on the suppression list for your account."
)
DEFAULT_SUPPRESSED_REASONS = ["BOUNCE", "COMPLAINT"]


class SesV2Error(JsonRESTError):
    code = 400

    def __init__(self, message: str) -> None:
        super().__init__(type(self).__name__, message)


class BadRequestException(SesV2Error):
    pass


class NotFoundException(SesV2Error):
    code = 404


class AlreadyExistsException(SesV2Error):
    pass


class MessageRejected(SesV2Error):
    pass


class SendingPausedException(SesV2Error):
    pass


class LimitExceededException(SesV2Error):
    pass


class TooManyRequestsException(SesV2Error):
    code = 429


@dataclass
class SentMail:
    """One message SES accepted, with what became of each recipient."""

    message_id: str
    account: str
    region: str
    operation: str
    source: str
    source_arn: str
    from_domain: str
    configuration_set: str
    destination: list[str]
    tags: list[dict[str, str]]
    headers: list[dict[str, str]]
    common_headers: dict[str, Any]
    mime: bytes
    sent_at: datetime
    subject: str
    template: str | None = None
    outcome: dict[str, str] = field(default_factory=dict)  # recipient -> Delivery, Bounce, ...
    events: list[str] = field(default_factory=list)  # the detail-types published, in order

    def summary(self) -> dict[str, Any]:
        return {
            "MessageId": self.message_id,
            "From": self.source,
            "To": self.destination,
            "Subject": self.subject,
            "Timestamp": ses_events.iso_ms(self.sent_at),
            "ConfigurationSetName": self.configuration_set or None,
            "Outcome": self.outcome,
            "Events": self.events,
        }


@dataclass
class SendQuota:
    max_24_hour_send: float = -1.0
    max_send_rate: float = -1.0


class Mailbox:
    """The local SES of one account and region: what moto does not keep (attached to its SES backend)."""

    def __init__(self, account: str, region: str) -> None:
        self.account = account
        self.region = region
        self.lock = threading.RLock()
        self.messages: dict[str, SentMail] = {}
        self.destinations: dict[str, dict[str, dict[str, Any]]] = {}  # configuration set -> name -> destination
        self.suppressed: dict[str, dict[str, Any]] = {}  # lowercase address -> {EmailAddress, Reason, LastUpdateTime}
        self.suppressed_reasons: list[str] = list(DEFAULT_SUPPRESSED_REASONS)
        self.quota = SendQuota()
        self._counted: deque[tuple[datetime, int]] = deque()
        self._tokens = 0.0
        self._tokens_at: datetime | None = None

    # -- quota ------------------------------------------------------------------------------------
    def sent_last_24_hours(self, moment: datetime) -> int:
        while self._counted and self._counted[0][0] <= moment - timedelta(hours=24):
            self._counted.popleft()
        return sum(count for _, count in self._counted)

    def take_quota(self, recipients: list[str]) -> None:
        """Count a send against the quota, or refuse it as SES does (rate first, then the 24 hours)."""
        moment = ses_events.now()
        rate = self.quota.max_send_rate
        if rate > 0:
            elapsed = (moment - self._tokens_at).total_seconds() if self._tokens_at else rate
            self._tokens = min(rate, self._tokens + max(0.0, elapsed) * rate)
            self._tokens_at = moment
            if self._tokens < 1:
                raise TooManyRequestsException("Maximum sending rate exceeded.")
        counted = sum(1 for r in recipients if not is_simulator(r))
        if 0 <= self.quota.max_24_hour_send < self.sent_last_24_hours(moment) + max(counted, 1):
            raise LimitExceededException("Daily message quota exceeded.")
        if rate > 0:
            self._tokens -= len(recipients)
        if counted:
            self._counted.append((moment, counted))

    # -- suppression --------------------------------------------------------------------------------
    def is_suppressed(self, address: str, configuration_set: Any) -> bool:
        options = getattr(configuration_set, "suppression_options", None) or {}
        if "SuppressedReasons" in options and not options["SuppressedReasons"]:
            return False  # the configuration set turned the account's list off
        return bare_address(address) in self.suppressed

    def suppress(self, address: str, reason: str) -> None:
        self.suppressed[bare_address(address)] = {
            "EmailAddress": bare_address(address),
            "Reason": reason,
            "LastUpdateTime": ses_events.now(),
        }

    def reasons_in_force(self, configuration_set: Any) -> list[str]:
        options = getattr(configuration_set, "suppression_options", None) or {}
        return list(options["SuppressedReasons"]) if "SuppressedReasons" in options else self.suppressed_reasons

    def keep(self, mail: SentMail) -> None:
        self.messages[mail.message_id] = mail


def bare_address(address: str) -> str:
    from email.utils import parseaddr

    return parseaddr(address)[1].lower() or address.lower()


def is_simulator(address: str) -> bool:
    return bare_address(address).endswith("@" + SIMULATOR_DOMAIN)


def simulator_box(address: str) -> str | None:
    """`bounce` for `bounce+label@simulator.amazonses.com`; None for any other address."""
    if not is_simulator(address):
        return None
    return bare_address(address).split("@", 1)[0].split("+", 1)[0]


def mailbox(account: str, region: str) -> Mailbox:
    """The mailbox of an account and region (a moto reset, which replaces the backend, empties it)."""
    from moto.ses.models import ses_backends

    backend = ses_backends[account][region]
    found = backend.__dict__.get("_local_mailbox")
    if found is None:
        found = backend.__dict__.setdefault("_local_mailbox", Mailbox(account, region))
    return found


def sent_mail(
    account: str,
    region: str,
    *,
    message_id: str | None = None,
    recipient: str | None = None,
    configuration_set: str | None = None,
) -> list[SentMail]:
    """The kept messages, oldest first, filtered by id, recipient and configuration set."""
    box = mailbox(account, region)
    with box.lock:
        found = list(box.messages.values())
    if message_id:
        found = [m for m in found if m.message_id == message_id]
    if recipient:
        wanted = bare_address(recipient)
        found = [m for m in found if wanted in {bare_address(d) for d in m.destination}]
    if configuration_set:
        found = [m for m in found if m.configuration_set == configuration_set]
    return found


def install() -> None:
    """Serve SES v2 sending as described above (idempotent, process-wide)."""
    from infra.local import ses_api, ses_mail

    ses_api.install()
    ses_mail.install_routes()
