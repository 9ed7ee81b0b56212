"""Normalising identifiers so the same person's records meet on the same key.

- email: trimmed and lower-cased (the local part is case-insensitive in practice); for Gmail
  (gmail.com, googlemail.com) dots and `+tags` in the local part are ignored, as Gmail does;
  for every other domain dots are significant and kept.
- phone: parsed with `phonenumbers` (with a default region for national formats) and stored in
  E.164; numbers that are not valid for their region are rejected.
- external ids, loyalty cards and device ids: trimmed; external ids are namespaced by the system
  that issued them, so `erp:42` and `shop:42` are different identities.
- every type: no control or format characters (a NUL, a zero-width space, a lone surrogate). They
  are invisible, so two keys that print alike would be different people, and a NUL cuts the value
  short in half the systems a key reaches (C strings, some CSV readers, SMS gateways).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from ecrm.core.errors import InvalidInput
from ecrm.customers.models import IdentityIn, identity_key

GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
_EMAIL = re.compile(
    r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)+$"
)
_TOKEN = re.compile(r"^[A-Za-z0-9_\-:.@/+=]{1,128}$")
# Unicode control (Cc), format (Cf), surrogate (Cs) and private-use (Co) characters.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co"})


class InvalidIdentity(InvalidInput):
    code = "invalid-identity"
    title = "Invalid identity"


@dataclass(frozen=True, order=True)
class NormalizedIdentity:
    type: str
    namespace: str
    value: str

    @property
    def key(self) -> str:
        return identity_key(self.type, self.namespace, self.value)


def normalize_email(raw: str) -> str:
    email = raw.strip().lower()
    if not _EMAIL.match(email):
        raise InvalidIdentity(f"{raw!r} is not an email address")
    local, domain = email.rsplit("@", 1)
    if domain in GMAIL_DOMAINS:
        local = local.split("+", 1)[0].replace(".", "")
        domain = "gmail.com"
        if not local:
            raise InvalidIdentity(f"{raw!r} is not an email address")
    return f"{local}@{domain}"


def normalize_phone(raw: str, default_region: str | None = None) -> str:
    # Imported here: phonenumbers costs ~50 ms of import, and most requests and events carry no phone.
    import phonenumbers

    try:
        number = phonenumbers.parse(raw.strip(), default_region)
    except phonenumbers.NumberParseException:
        raise InvalidIdentity(
            f"{raw!r} is not a phone number" + ("" if default_region else " (national numbers need a region)")
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidIdentity(f"{raw!r} is not a valid phone number")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def normalize_token(raw: str, what: str) -> str:
    token = raw.strip()
    if not _TOKEN.match(token):
        raise InvalidIdentity(f"{raw!r} is not a valid {what}")
    return token


def refuse_invisible_characters(raw: str, what: str) -> None:
    """`InvalidIdentity` naming the first control, format or surrogate code point in `raw` (never echoing it)."""
    for position, char in enumerate(raw):
        if unicodedata.category(char) in _INVISIBLE_CATEGORIES:
            raise InvalidIdentity(
                f"{what}: holds an invisible character (U+{ord(char):04X}) at position {position}; "
                "identities are printable text"
            )


def normalize_identity(identity: IdentityIn, *, default_region: str | None = None) -> NormalizedIdentity:
    refuse_invisible_characters(identity.value.strip(), identity.type.replace("_", " "))
    if identity.type == "email":
        return NormalizedIdentity("email", "", normalize_email(identity.value))
    if identity.type == "phone":
        return NormalizedIdentity("phone", "", normalize_phone(identity.value, default_region))
    if identity.type == "loyalty_card":
        return NormalizedIdentity("loyalty_card", "", normalize_token(identity.value, "loyalty card").upper())
    value = normalize_token(identity.value, identity.type.replace("_", " "))
    return NormalizedIdentity(identity.type, identity.namespace, value)


def normalize_all(identities: list[IdentityIn], *, default_region: str | None = None) -> list[NormalizedIdentity]:
    """Normalised and de-duplicated, in a stable order."""
    return sorted({normalize_identity(i, default_region=default_region) for i in identities})
