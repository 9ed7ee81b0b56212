"""An Amazon Pinpoint endpoint export as customer records for the customer store's own bulk import.

A Pinpoint export job writes JSON lines, one endpoint per line (gzip-compressed in S3), each with
`ChannelType`, `Address`, `OptOut` (`ALL` | `NONE`), `EndpointStatus` (`ACTIVE` | `INACTIVE`),
`User.UserId`, `User.UserAttributes`, `Attributes`, `Demographic`, `Location` and `EffectiveDate`
(the `EndpointResponse` shape of the Pinpoint API reference). Pinpoint keeps one endpoint per
address; the customer store keeps one customer per person: endpoints are grouped by `User.UserId`
(an endpoint without one is a person of its own) into one JSON Lines row per person, with the
mapping the import path (`POST /imports`) reads, so identities, consents, preferences and
attributes go through the same validation, resolution and error report as any other import.

- EMAIL -> an `email` identity and `consent.email.marketing`; SMS -> a `phone` identity and
  `consent.sms.marketing`; VOICE -> a `phone` identity and `consent.phone.marketing`. `OptOut ALL` is
  a denial, `NONE` a grant, proven by the import (source `pinpoint`, the endpoint's `EffectiveDate`);
  when a person's endpoints of one channel disagree, the denial wins.
- `User.UserId` -> an `external_id` in the import source's namespace; `Demographic.Timezone` and
  `Demographic.Locale` -> the time zone and language preferences; `Location` -> country, city,
  postal code, region; user and endpoint attributes -> snake_case profile attributes (a list of
  values joined with ", ").
- Not mapped, and reported: inactive endpoints (Pinpoint had retired the address), push endpoints
  (APNs/FCM tokens: devices register again through the broadcast engine's `POST /me/devices`),
  other channels, `Metrics`, and lines that are not an endpoint (each with its line number: the
  rest of the file is still mapped, as an import's bad rows do not block the good ones).
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

CONSENT_CHANNEL = {"EMAIL": "email", "SMS": "sms", "VOICE": "phone"}
IDENTITY_OF = {"EMAIL": "email", "SMS": "phone", "VOICE": "phone"}
PUSH_CHANNELS = frozenset({"APNS", "APNS_SANDBOX", "APNS_VOIP", "APNS_VOIP_SANDBOX", "GCM", "BAIDU", "ADM"})
LOCATION_ATTRIBUTES = {"Country": "country", "City": "city", "PostalCode": "postal_code", "Region": "region"}
PUSH_NOTE = "push tokens are not mapped: devices register again through POST /me/devices"
EXAMPLES = 3
_ATTRIBUTE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class ExportUnreadable(Exception):
    """The export as a whole cannot be read (missing, not text): nothing is mapped."""


@dataclass
class MappingReport:
    """What was mapped and what was not: counts and the first examples of each kind."""

    lines: int = 0
    endpoints: int = 0
    people: int = 0
    mapped: Counter[str] = field(default_factory=Counter)
    not_mapped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def skip(self, reason: str, example: str) -> None:
        self.not_mapped[reason] += 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < EXAMPLES:
            shown.append(example)

    def lines_of_text(self) -> list[str]:
        text = [
            f"endpoints: {self.endpoints} read from {self.lines} line(s), {self.people} customer record(s)",
            *(f"  mapped {name}: {count}" for name, count in sorted(self.mapped.items())),
        ]
        if self.not_mapped:
            text.append("not mapped:")
            for reason, count in sorted(self.not_mapped.items()):
                text.append(f"  {reason}: {count} (e.g. {'; '.join(self.examples.get(reason, []))})")
        return text


@dataclass
class _Person:
    key: str
    user_id: str | None
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    consents: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)
    time_zone: str | None = None
    language: str | None = None
    observed_at: str | None = None


@dataclass
class ImportRows:
    """The customer records as JSON Lines rows, and the mapping `POST /imports` takes for them."""

    rows: list[dict[str, Any]]
    mapping: dict[str, str]
    report: MappingReport

    def jsonl(self) -> str:
        return "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in self.rows)


def read_export(path: Path) -> Iterator[tuple[str, int, str]]:
    """(file name, line number, text) of every non-blank line of a file, a `.gz` file, or a folder of them."""
    if not path.exists():
        raise ExportUnreadable(f"{path}: no such file or folder")
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        opener = gzip.open if file.suffix == ".gz" else open
        try:
            with opener(file, "rt", encoding="utf-8-sig") as lines:
                for number, line in enumerate(lines, start=1):
                    if line.strip():
                        yield file.name, number, line
        except (UnicodeDecodeError, gzip.BadGzipFile, EOFError) as error:
            raise ExportUnreadable(f"{file.name}: not a Pinpoint export (JSON lines): {error}") from None


def map_export(lines: Iterable[tuple[str, int, str]]) -> ImportRows:
    report = MappingReport()
    people: dict[str, _Person] = {}
    for name, number, text in lines:
        report.lines += 1
        endpoint = _endpoint(text)
        if endpoint is None:
            report.skip("lines that are not an endpoint", f"{name} line {number}")
            continue
        report.endpoints += 1
        _add(endpoint, people, report)
    rows = [row for person in people.values() if (row := _row(person, report)) is not None]
    report.people = len(rows)
    mapping = {column: _target(column) for row in rows for column in row}
    return ImportRows(rows=rows, mapping=dict(sorted(mapping.items())), report=report)


def _endpoint(text: str) -> dict[str, Any] | None:
    try:
        endpoint = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(endpoint, dict) or not isinstance(endpoint.get("ChannelType"), str):
        return None
    return endpoint


def _add(endpoint: dict[str, Any], people: dict[str, _Person], report: MappingReport) -> None:
    endpoint_id = str(endpoint.get("Id") or "?")
    user = _object(endpoint.get("User"))
    user_id = user.get("UserId") if isinstance(user.get("UserId"), str) and user.get("UserId") else None
    key = f"user:{user_id}" if user_id else f"endpoint:{endpoint_id}"
    person = people.setdefault(key, _Person(key=key, user_id=user_id))
    channel = endpoint["ChannelType"]
    address = endpoint.get("Address")
    if endpoint.get("Metrics"):
        report.skip("endpoint metrics", endpoint_id)
    if channel in PUSH_CHANNELS:
        report.skip(PUSH_NOTE, f"{endpoint_id} ({channel})")
    elif channel not in IDENTITY_OF:
        report.skip(f"{channel} endpoints", endpoint_id)
    elif endpoint.get("EndpointStatus") == "INACTIVE":
        report.skip("inactive endpoints (an address Pinpoint had retired)", endpoint_id)
    elif not isinstance(address, str) or not address.strip():
        report.skip("endpoints without an address", endpoint_id)
    else:
        addresses = person.emails if IDENTITY_OF[channel] == "email" else person.phones
        if address.strip() not in addresses:
            addresses.append(address.strip())
        report.mapped[f"{channel} endpoints"] += 1
        consent = CONSENT_CHANNEL[channel]
        state = "denied" if endpoint.get("OptOut") == "ALL" else "granted"
        if person.consents.get(consent) != "denied":  # a denial from any endpoint of the channel wins
            person.consents[consent] = state
        effective = endpoint.get("EffectiveDate")
        if isinstance(effective, str) and (person.observed_at is None or effective > person.observed_at):
            person.observed_at = effective
    _add_profile(endpoint, user, person, report)


def _add_profile(endpoint: dict[str, Any], user: dict[str, Any], person: _Person, report: MappingReport) -> None:
    demographic = _object(endpoint.get("Demographic"))
    zone = demographic.get("Timezone")
    if isinstance(zone, str) and zone and person.time_zone is None:
        if _is_zone(zone):
            person.time_zone = zone
        else:
            report.skip("time zones that are not IANA names", zone)
    locale = demographic.get("Locale")
    if isinstance(locale, str) and locale and person.language is None:
        person.language = locale.replace("_", "-")
    location = _object(endpoint.get("Location"))
    for source, attribute in LOCATION_ATTRIBUTES.items():
        value = location.get(source)
        if isinstance(value, str) and value:
            person.attributes.setdefault(attribute, value)
    for group in (user.get("UserAttributes"), endpoint.get("Attributes")):
        for name, values in _object(group).items():
            attribute = snake_case(name)
            if not _ATTRIBUTE.match(attribute) or attribute in ("user_id", "observed_at"):
                report.skip("attributes without a usable name", name)
                continue
            value = ", ".join(str(v) for v in values) if isinstance(values, list) else str(values)
            if value:
                person.attributes.setdefault(attribute, value)


def _row(person: _Person, report: MappingReport) -> dict[str, Any] | None:
    if not (person.user_id or person.emails or person.phones):
        report.skip("people with nothing to identify them (no user id, no email, no phone)", person.key)
        return None
    row: dict[str, Any] = {}
    if person.user_id:
        row["user_id"] = person.user_id
    for kind, addresses in (("email", person.emails), ("phone", person.phones)):
        for index, address in enumerate(addresses, start=1):
            row[f"{kind}_{index}"] = address
    for channel, state in sorted(person.consents.items()):
        row[f"consent_{channel}_marketing"] = state
        report.mapped[f"consents {channel} marketing {state}"] += 1
    if person.time_zone:
        row["time_zone"] = person.time_zone
    if person.language:
        row["language"] = person.language
    if person.observed_at:
        row["observed_at"] = person.observed_at
    for name, value in sorted(person.attributes.items()):
        row[f"attribute_{name}"] = value
    report.mapped["attributes"] += len(person.attributes)
    return row


def _target(column: str) -> str:
    """The import mapping's target of a generated column."""
    if column == "user_id":
        return "external_id"
    if column.startswith(("email_", "phone_")):
        return column.split("_", 1)[0]
    if column.startswith("consent_"):
        channel = column.removeprefix("consent_").removesuffix("_marketing")
        return f"consent.{channel}.marketing"
    if column in ("time_zone", "language"):
        return f"preference.{column}"
    if column == "observed_at":
        return "observed_at"
    return column.removeprefix("attribute_")


def snake_case(name: str) -> str:
    """FirstName -> first_name, postalCode -> postal_code, "Favourite colour" -> favourite_colour."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name.strip())
    return re.sub(r"[^a-z0-9]+", "_", spaced.lower()).strip("_")


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _is_zone(zone: str) -> bool:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
