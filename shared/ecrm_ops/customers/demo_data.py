"""A realistic multi-source customer data set for the demo tour and for benchmarks.

`generate()` invents `people` persons (names, addresses and birth dates from Faker; e-mail
addresses, mobile numbers and loyalty cards made unique) and exports them the way four systems
would, each as a CSV file with its own columns and formats:

- `web` sign-ups (~70% of persons): `Email`, `First Name`, `Last Name`, `Country` (ISO-2),
  `Newsletter` (yes/no), `Language`. E-mail addresses are typed the way people type them: other
  case, padded, and for Gmail with or without dots, with `+tags` or at googlemail.com. Some people
  signed up twice.
- `shop` orders (~50%, one row per order, 1-3 orders): `customer_email`, `phone`,
  `shop_customer_id`, `city`, `postal_code` plus order columns the mapping ignores. The shop is
  the German web shop: German numbers are exported in national format (`01512 3456789`,
  `015123456789`, `01512/3456789`), foreign ones in international format, so the file is
  imported with default phone region DE. Some guest orders have a phone but no e-mail.
- `callcenter` calls (~25%, 1-2 calls): `caller_phone`, `name` (unmapped: one field cannot be
  split into first and last name reliably), `loyalty_card`, `sms_opt_in` (Y/N) plus call columns
  the mapping ignores. The contact centre is in the US: US callers are logged in national formats
  (`(201) 555-0123`, `201-555-0123`, `201.555.0123`, ...), foreign callers in international
  formats (E.164, with spaces, dashes or `(0)`), so the default phone region is US.
- `erp` customers (~35%): `ERP_ID`, `EMAIL` (sometimes upper-case), `PHONE` (E.164), `FIRSTNAME`,
  `LASTNAME`, `STREET`, `ZIP`, `CITY`, `COUNTRY` (ISO-2), `BIRTHDATE` (ISO), `LOYALTY_CARD`.

A person appears in one to four sources. Every person's good rows are linked by shared
identities, sometimes only transitively: a web sign-up (e-mail) and a call (phone) have nothing
in common until a shop order or the ERP names both. Imported in the order of `files`, these
records first create two customers that a later record merges. About 2% of each file's rows are
bad on purpose (an e-mail like `jane.doe@`, a phone `12345`, no identity at all, a country
written out instead of its ISO code): the importer must report them and go on. A bad row either
repeats identities of a person who has good rows or carries no valid identity at all, so however
an importer treats it, it never changes how many customers there are.

Phone numbers are synthetic: the example mobile ranges of `phonenumbers` with the last digits
varied, kept only when `phonenumbers` accepts them.

`write()` puts `<source>.csv` and `<source>.mapping.json` (an `ImportRequest` body) in a folder
for `ecrm import FILE --source NAME --mapping MAPPING.json`.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import random
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import phonenumbers
from ecrm.customers.identity import normalize_email
from ecrm.customers.models import ImportRequest

if TYPE_CHECKING:
    from faker import Faker

# In this order the first two files create separate customers that the shop and ERP exports link.
SOURCES = ("web", "callcenter", "shop", "erp")

# Where a mapping may send a column; columns that are not mapped are ignored.
TARGETS = frozenset(
    {
        "email",
        "phone",
        "external_id",
        "loyalty_card",
        "consent.email.marketing",
        "consent.sms.marketing",
        "preference.language",
        "first_name",
        "last_name",
        "street",
        "postal_code",
        "city",
        "country",
        "birth_date",
    }
)
IDENTITY_TARGETS = frozenset({"email", "phone", "external_id", "loyalty_card"})

COLUMNS: dict[str, tuple[str, ...]] = {
    "web": ("Email", "First Name", "Last Name", "Country", "Newsletter", "Language", "Signed Up"),
    "callcenter": ("called_at", "caller_phone", "name", "loyalty_card", "sms_opt_in", "topic"),
    "shop": (
        "order_id",
        "order_date",
        "customer_email",
        "phone",
        "shop_customer_id",
        "city",
        "postal_code",
        "order_total",
    ),
    "erp": (
        "ERP_ID",
        "EMAIL",
        "PHONE",
        "FIRSTNAME",
        "LASTNAME",
        "STREET",
        "ZIP",
        "CITY",
        "COUNTRY",
        "BIRTHDATE",
        "LOYALTY_CARD",
    ),
}

MAPPINGS: dict[str, dict[str, str]] = {
    "web": {
        "Email": "email",
        "First Name": "first_name",
        "Last Name": "last_name",
        "Country": "country",
        "Newsletter": "consent.email.marketing",
        "Language": "preference.language",
    },
    "callcenter": {
        "caller_phone": "phone",
        "loyalty_card": "loyalty_card",
        "sms_opt_in": "consent.sms.marketing",
    },
    "shop": {
        "customer_email": "email",
        "phone": "phone",
        "shop_customer_id": "external_id",
        "city": "city",
        "postal_code": "postal_code",
    },
    "erp": {
        "ERP_ID": "external_id",
        "EMAIL": "email",
        "PHONE": "phone",
        "FIRSTNAME": "first_name",
        "LASTNAME": "last_name",
        "STREET": "street",
        "ZIP": "postal_code",
        "CITY": "city",
        "COUNTRY": "country",
        "BIRTHDATE": "birth_date",
        "LOYALTY_CARD": "loyalty_card",
    },
}

DEFAULT_REGIONS: dict[str, str | None] = {"web": None, "callcenter": "US", "shop": "DE", "erp": None}

# How likely a person is to appear in each source.
SHARES = {"web": 0.70, "callcenter": 0.25, "shop": 0.50, "erp": 0.35}
BAD_SHARE = 0.02  # of each file's rows
LOST_SHARE = 0.007  # of persons, whose only record is a bad one
LOYALTY_SHARE = 0.40
GMAIL_SHARE = 0.35

_REGIONS = (("DE", "de_DE", 0.40), ("FR", "fr_FR", 0.20), ("GB", "en_GB", 0.20), ("US", "en_US", 0.20))
_LANGUAGES = {"DE": "de", "FR": "fr", "GB": "en-GB", "US": "en-US"}
_COUNTRY_NAMES = {"DE": "Germany", "FR": "France", "GB": "United Kingdom", "US": "USA"}
# National significant number prefixes around the `phonenumbers` example mobile numbers, and how
# many digits follow them.
_PHONE_BLOCKS: dict[str, tuple[tuple[str, ...], int]] = {
    "US": (tuple(f"{npa}555" for npa in ("201", "212", "213", "305", "312", "415", "503", "617", "702", "917")), 4),
    "GB": (tuple(f"740{digit}" for digit in range(10)), 6),
    "DE": (("1511", "1512", "1515", "1516", "1520", "1522", "1573", "1575", "1577", "1590"), 7),
    "FR": (("6", "7"), 8),
}
# Bad rows: what can go wrong in each source.
_BAD_KINDS = {
    "web": ("invalid_email", "no_identity", "bad_country"),
    "callcenter": ("invalid_phone", "no_identity"),
    "shop": ("invalid_email", "invalid_phone", "no_identity"),
    "erp": ("invalid_email", "invalid_phone", "no_identity", "bad_country"),
}
_BAD_PHONES = ("12345", "0000", "+49 123", "call back")
_TOPICS = ("order status", "returns", "loyalty points", "address change", "complaint", "product question")
_TRANSLITERATE = str.maketrans({"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "ł": "l", "đ": "d", "þ": "th"})
_EPOCH = datetime(2025, 6, 30, 18, 0)  # "now" for the exports, so that a seed always gives the same files


@dataclass(frozen=True)
class Person:
    """One synthetic person: the ground truth behind the records."""

    index: int
    country: str
    first_name: str
    last_name: str
    email: str
    phone: str  # E.164
    street: str
    postal_code: str
    city: str
    birth_date: date
    loyalty_card: str | None
    shop_id: str
    erp_id: str

    @property
    def language(self) -> str:
        return _LANGUAGES[self.country]


@dataclass
class DemoDataSet:
    """Four source exports of the same `people` persons, with what identity resolution should find."""

    people: int
    seed: int
    files: dict[str, bytes]  # source -> CSV, in import order
    mappings: dict[str, dict[str, str]]  # source -> column -> target
    default_regions: dict[str, str | None]  # source -> region for national phone numbers
    expected_customers: int  # persons with at least one good row: what resolution should reach
    records: int  # data rows in all files
    bad_rows: int  # rows the importer must report
    linked_persons: int  # persons with two sources' records that share no identity (merge cases)
    row_owners: dict[str, list[int]] = field(repr=False)  # source -> the person behind each row

    def import_request(self, source: str) -> dict[str, object]:
        """The `ImportRequest` body (`POST /imports`, `ecrm import --mapping`) for one file."""
        body: dict[str, object] = {
            "source": source,
            "format": "csv",
            "mapping": dict(self.mappings[source]),
            "default_phone_region": self.default_regions[source],
        }
        ImportRequest.model_validate(body)
        return body


def generate(people: int = 3000, seed: int = 7) -> DemoDataSet:
    """The same data set for the same arguments (not thread-safe: the Faker instances are shared)."""
    if people < 1:
        raise ValueError("people must be at least 1")
    rng = random.Random(seed)  # noqa: S311 -- synthetic data, reproducible by design
    fakers = _fakers()
    for offset, fake in enumerate(fakers.values()):
        fake.seed_instance(seed * 10 + offset)
    persons = _Persons(rng, fakers).make(people)

    lost = set(rng.sample(range(people), k=round(people * LOST_SHARE)))
    good: dict[str, list[tuple[int, dict[str, str]]]] = {source: [] for source in SOURCES}
    bad: dict[str, list[tuple[int, dict[str, str]]]] = {source: [] for source in SOURCES}
    linked = 0
    exporter = _Exporter(rng)
    for person in persons:
        if person.index in lost:
            continue
        plan = _plan(person, rng)
        linked += _needs_transitive_link(plan)
        for source, knows in plan.items():
            for row in exporter.rows(source, person, knows):
                good[source].append((person.index, row))

    for index in sorted(lost):
        source = rng.choices(SOURCES, weights=[SHARES[source] for source in SOURCES])[0]
        kind = rng.choice([kind for kind in _BAD_KINDS[source] if kind != "bad_country"])
        row = exporter.rows(source, persons[index], set())[0]
        bad[source].append((index, _spoil(source, row, kind, persons[index], rng, keep_identities=False)))
    for source in SOURCES:
        kinds = _BAD_KINDS[source]
        wanted = max(len(kinds), round(len(good[source]) * BAD_SHARE))
        for n in range(max(0, wanted - len(bad[source]))):
            if not good[source]:
                break
            owner, row = rng.choice(good[source])
            bad[source].append((owner, _spoil(source, dict(row), kinds[n % len(kinds)], persons[owner], rng)))

    files: dict[str, bytes] = {}
    owners: dict[str, list[int]] = {}
    for source in SOURCES:
        rows = good[source] + bad[source]
        rng.shuffle(rows)
        owners[source] = [owner for owner, _ in rows]
        files[source] = _csv(COLUMNS[source], [row for _, row in rows])
    return DemoDataSet(
        people=people,
        seed=seed,
        files=files,
        mappings={source: dict(MAPPINGS[source]) for source in SOURCES},
        default_regions=dict(DEFAULT_REGIONS),
        expected_customers=people - len(lost),
        records=sum(len(owners[source]) for source in SOURCES),
        bad_rows=sum(len(bad[source]) for source in SOURCES),
        linked_persons=linked,
        row_owners=owners,
    )


def write(dataset: DemoDataSet, directory: Path) -> dict[str, Path]:
    """Write `<source>.csv` and `<source>.mapping.json` for every source.

    Returns source -> CSV path; the mapping sits next to it: `path.with_suffix(".mapping.json")`.
    """
    directory.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for source, content in dataset.files.items():
        path = directory / f"{source}.csv"
        path.write_bytes(content)
        path.with_suffix(".mapping.json").write_text(json.dumps(dataset.import_request(source), indent=2) + "\n")
        paths[source] = path
    return paths


@functools.cache
def _fakers() -> dict[str, Faker]:
    """One Faker per region, built once (that is the slow part) and seeded by each `generate()`."""
    from faker import Faker  # operator tooling (the `ops` extra), not in the Lambda layer

    return {region: Faker(locale) for region, locale, _ in _REGIONS}


# -- persons --------------------------------------------------------------------------------------
class _Persons:
    def __init__(self, rng: random.Random, fakers: dict[str, Faker]) -> None:
        self.rng = rng
        self.fakers = fakers
        self.emails: set[str] = set()
        self.phones: set[str] = set()
        self.cards: set[str] = set()

    def make(self, people: int) -> list[Person]:
        regions = self.rng.choices([r for r, _, _ in _REGIONS], weights=[w for _, _, w in _REGIONS], k=people)
        return [self._person(index, region) for index, region in enumerate(regions)]

    def _person(self, index: int, country: str) -> Person:
        fake, rng = self.fakers[country], self.rng
        first, last = fake.first_name(), fake.last_name()
        birth = date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 65))
        return Person(
            index=index,
            country=country,
            first_name=first,
            last_name=last,
            email=self._email(first, last, birth, fake),
            phone=self._phone(country),
            street=" ".join(fake.street_address().split()),
            postal_code=fake.postcode(),
            city=fake.city(),
            birth_date=birth,
            loyalty_card=self._card() if rng.random() < LOYALTY_SHARE else None,
            shop_id=f"S{100000 + index}",
            erp_id=f"C{1000000 + index * 7 + rng.randrange(7)}",
        )

    def _email(self, first: str, last: str, birth: date, fake: Faker) -> str:
        rng = self.rng
        given, family = _ascii(first) or "customer", _ascii(last) or "mail"
        local = rng.choice(
            (f"{given}.{family}", f"{given}{family}", f"{given[0]}.{family}", f"{given}_{family}", f"{family}.{given}")
        )
        if rng.random() < 0.3:
            local += str(birth.year % 100).zfill(2)
        domain = "gmail.com" if rng.random() < GMAIL_SHARE else fake.free_email_domain()
        if domain in ("gmail.com", "googlemail.com"):
            domain = "gmail.com"
        email = f"{local}@{domain}"
        while normalize_email(email) in self.emails:
            email = f"{local}{rng.randrange(1, 1000)}@{domain}"
        self.emails.add(normalize_email(email))
        return email

    def _phone(self, region: str) -> str:
        prefixes, digits = _PHONE_BLOCKS[region]
        for _ in range(10_000):
            national = _digits(self.rng, self.rng.choice(prefixes), digits)
            number = phonenumbers.parse(national if region == "US" else f"0{national}", region)
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            if e164 not in self.phones and phonenumbers.is_valid_number(number):
                self.phones.add(e164)
                return str(e164)
        raise RuntimeError(f"ran out of synthetic {region} phone numbers")

    def _card(self) -> str:
        while True:
            card = _digits(self.rng, "LC", 10)
            if card not in self.cards:
                self.cards.add(card)
                return card


def _digits(rng: random.Random, prefix: str, count: int) -> str:
    return prefix + "".join(rng.choice("0123456789") for _ in range(count))


def _ascii(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text.lower().translate(_TRANSLITERATE))
    return re.sub(r"[^a-z]", "", plain.encode("ascii", "ignore").decode())


# -- which source knows what ----------------------------------------------------------------------
# "email", "phone" and "loyalty" are what links a person's records across sources (external ids
# are namespaced by the system that issued them, so they never do).
Plan = dict[str, set[str]]


def _plan(person: Person, rng: random.Random) -> Plan:
    sources = [source for source in SOURCES if rng.random() < SHARES[source]]
    if not sources:
        sources = rng.choices(SOURCES, weights=[SHARES[source] for source in SOURCES])
    card = person.loyalty_card is not None
    plan: Plan = {}
    for source in sources:
        if source == "web":
            plan[source] = {"email"}
        elif source == "shop":
            with_email = rng.random() < 0.85
            plan[source] = {"email"} if with_email else set()
            if not with_email or rng.random() < 0.6:
                plan[source].add("phone")
        elif source == "callcenter":
            plan[source] = {"phone"} | ({"loyalty"} if card and rng.random() < 0.6 else set())
        else:
            plan[source] = {name for name, share in (("email", 0.9), ("phone", 0.75)) if rng.random() < share}
            plan[source] |= {"loyalty"} if card else set()
    if not _connected(plan):
        linkers: list[str] = [source for source in ("shop", "erp") if source in plan]
        if not linkers:
            linker = "shop" if rng.random() < 0.7 else "erp"
            plan[linker] = {"loyalty"} if linker == "erp" and card else set()
            linkers = [linker]
        for source in linkers:
            plan[source] |= {"email", "phone"}
    return plan


def _connected(plan: Plan) -> bool:
    sources = list(plan)
    reached, frontier = {sources[0]}, [sources[0]]
    while frontier:
        here = frontier.pop()
        for there in sources:
            if there not in reached and plan[here] & plan[there]:
                reached.add(there)
                frontier.append(there)
    return len(reached) == len(sources)


def _needs_transitive_link(plan: Plan) -> bool:
    sources = list(plan)
    return any(not plan[a] & plan[b] for i, a in enumerate(sources) for b in sources[i + 1 :])


# -- rows -----------------------------------------------------------------------------------------
class _Exporter:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.orders = 0

    def rows(self, source: str, person: Person, knows: set[str]) -> list[dict[str, str]]:
        rng = self.rng
        if source == "web":
            count = 2 if rng.random() < 0.05 else 1
            return [self._web(person, first=n == 0) for n in range(count)]
        if source == "shop":
            return [self._shop(person, knows) for _ in range(rng.choices((1, 2, 3), weights=(70, 20, 10))[0])]
        if source == "callcenter":
            return [self._call(person, knows) for _ in range(rng.choices((1, 2), weights=(80, 20))[0])]
        return [self._erp(person, knows)]

    def _when(self, days: int) -> datetime:
        return _EPOCH - timedelta(minutes=self.rng.randrange(days * 24 * 60))

    def _web(self, person: Person, *, first: bool) -> dict[str, str]:
        rng = self.rng
        return {
            "Email": _typed_email(person.email, rng, variant=0.35 if first else 1.0),
            "First Name": person.first_name,
            "Last Name": person.last_name,
            "Country": person.country,
            "Newsletter": "yes" if rng.random() < 0.45 else "no",
            "Language": person.language,
            "Signed Up": self._when(900).isoformat(timespec="seconds"),
        }

    def _shop(self, person: Person, knows: set[str]) -> dict[str, str]:
        self.orders += 1
        return {
            "order_id": f"O{500000 + self.orders}",
            "order_date": self._when(400).date().isoformat(),
            "customer_email": person.email.lower() if "email" in knows else "",
            "phone": _shop_phone(person, self.rng) if "phone" in knows else "",
            "shop_customer_id": person.shop_id,
            "city": person.city,
            "postal_code": person.postal_code,
            "order_total": f"{self.rng.uniform(9, 400):.2f}",
        }

    def _call(self, person: Person, knows: set[str]) -> dict[str, str]:
        rng = self.rng
        card = person.loyalty_card or ""
        return {
            "called_at": self._when(365).isoformat(timespec="seconds"),
            "caller_phone": _caller_phone(person, rng) if "phone" in knows else "",
            "name": f"{person.first_name} {person.last_name}"
            if rng.random() < 0.7
            else f"{person.last_name.upper()}, {person.first_name}",
            "loyalty_card": (card.lower() if rng.random() < 0.2 else card) if "loyalty" in knows else "",
            "sms_opt_in": "Y" if rng.random() < 0.3 else "N",
            "topic": rng.choice(_TOPICS),
        }

    def _erp(self, person: Person, knows: set[str]) -> dict[str, str]:
        email = (person.email.upper() if self.rng.random() < 0.3 else person.email) if "email" in knows else ""
        return {
            "ERP_ID": person.erp_id,
            "EMAIL": email,
            "PHONE": person.phone if "phone" in knows else "",
            "FIRSTNAME": person.first_name,
            "LASTNAME": person.last_name,
            "STREET": person.street,
            "ZIP": person.postal_code,
            "CITY": person.city,
            "COUNTRY": person.country,
            "BIRTHDATE": person.birth_date.isoformat(),
            "LOYALTY_CARD": (person.loyalty_card or "") if "loyalty" in knows else "",
        }


_EMAIL_COLUMN = {"web": "Email", "shop": "customer_email", "erp": "EMAIL"}
_PHONE_COLUMN = {"callcenter": "caller_phone", "shop": "phone", "erp": "PHONE"}
_IDENTITY_COLUMNS = {
    source: [column for column, target in mapping.items() if target in IDENTITY_TARGETS]
    for source, mapping in MAPPINGS.items()
}


def _spoil(
    source: str, row: dict[str, str], kind: str, person: Person, rng: random.Random, *, keep_identities: bool = True
) -> dict[str, str]:
    """Make a row bad. Without `keep_identities`, the row is left with no valid identity at all."""
    if not keep_identities:
        for column in _IDENTITY_COLUMNS[source]:
            row[column] = ""
    if kind == "invalid_email":
        local, domain = person.email.split("@")
        row[_EMAIL_COLUMN[source]] = rng.choice((f"{local}@", f"{local}@{domain.split('.')[0]}", f"{local}.{domain}"))
    elif kind == "invalid_phone":
        row[_PHONE_COLUMN[source]] = rng.choice(_BAD_PHONES)
    elif kind == "no_identity":
        for column in _IDENTITY_COLUMNS[source]:
            row[column] = ""
    else:  # bad_country
        row["Country" if source == "web" else "COUNTRY"] = _COUNTRY_NAMES[person.country]
    return row


def _typed_email(email: str, rng: random.Random, *, variant: float) -> str:
    """The address as someone types it into a form: the same mailbox after normalisation."""
    if rng.random() >= variant:
        return email
    local, domain = email.split("@")
    roll = rng.random()
    if domain == "gmail.com" and roll < 0.6:
        how = rng.randrange(4)
        if how == 0:
            local = local.replace(".", "")
        elif how == 1:
            at = rng.randrange(1, len(local))
            local = f"{local[:at]}.{local[at:]}".replace("..", ".")
        elif how == 2:
            local = f"{local}+{rng.choice(('shop', 'news', 'promo', 'web'))}"
        else:
            domain = "googlemail.com"
    elif roll < 0.85:
        local = local.capitalize() if rng.random() < 0.5 else local.upper()
        domain = domain.capitalize() if rng.random() < 0.5 else domain
    else:
        return f" {email} "
    return f"{local}@{domain}"


def _parse(e164: str) -> phonenumbers.PhoneNumber:
    return phonenumbers.parse(e164, None)


def _shop_phone(person: Person, rng: random.Random) -> str:
    number = _parse(person.phone)
    if person.country != "DE":
        return (
            person.phone
            if rng.random() < 0.4
            else phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        )
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return rng.choice((national, national.replace(" ", ""), national.replace(" ", "/")))


def _caller_phone(person: Person, rng: random.Random) -> str:
    number = _parse(person.phone)
    international = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    if person.country != "US":
        trunk = international.replace(" ", " (0) ", 1) if person.country in ("DE", "GB") else international
        return rng.choice((person.phone, international, international.replace(" ", "-"), trunk))
    digits = str(number.national_number)
    area, exchange, line = digits[:3], digits[3:6], digits[6:]
    return rng.choice(
        (
            f"({area}) {exchange}-{line}",
            f"{area}-{exchange}-{line}",
            f"{area}.{exchange}.{line}",
            digits,
            international,
            person.phone,
        )
    )


def _csv(columns: tuple[str, ...], rows: list[dict[str, str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")
