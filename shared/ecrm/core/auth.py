"""Who is calling: the principal behind an API request, from the Cognito authorizer's claims.

API Gateway verifies the ID token (the embedded local cloud does the same against the local
Cognito) and passes its claims in `requestContext.authorizer.claims`. Group checks happen here,
in the function, because a Cognito authorizer does not check groups.

`Access` is what a route declares about its callers when it is registered (`ecrm.core.api`): it is
enforced before the request's parameters and body are read, and published in the OpenAPI document,
so who may call what is one table a test can walk rather than a call buried in each route.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ConfigDict

from ecrm.core.contract import Contract
from ecrm.core.errors import Forbidden, Unauthorized

STAFF_GROUPS = frozenset({"admin", "marketer", "analyst", "agent"})
CUSTOMER_ID_CLAIM = "custom:customer_id"


class Principal(Contract):
    model_config = ConfigDict(frozen=True)

    subject: str
    username: str | None = None
    email: str | None = None
    groups: frozenset[str] = frozenset()
    customer_id: str | None = None

    @property
    def is_staff(self) -> bool:
        return bool(self.groups & STAFF_GROUPS)

    @property
    def actor(self) -> str:
        """Who did it, as every engine records it in audit fields (`created_by`, `requested_by`, ...).

        The token's subject: it never changes for a user (an email address does, and is personal data
        that would then be copied into every record and event the user touches); the user pool maps it
        back to the person when an auditor asks.
        """
        return self.subject


def parse_groups(raw: Any) -> frozenset[str]:
    """`cognito:groups` arrives as a list, "a,b" (REST API authorizer) or "[a b]" (JWT authorizer)."""
    if raw is None or raw == "":
        return frozenset()
    if isinstance(raw, list | tuple | set | frozenset):
        return frozenset(str(g) for g in raw)
    text = str(raw).strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return frozenset(part for part in text.replace(",", " ").split() if part)


def principal_from_claims(claims: Mapping[str, Any] | None) -> Principal:
    if not claims or not claims.get("sub"):
        raise Unauthorized("a valid bearer token is required")
    return Principal(
        subject=str(claims["sub"]),
        username=claims.get("cognito:username"),
        email=claims.get("email"),
        groups=parse_groups(claims.get("cognito:groups")),
        customer_id=claims.get(CUSTOMER_ID_CLAIM) or None,
    )


def principal_from_event(event: Mapping[str, Any]) -> Principal:
    claims = ((event.get("requestContext") or {}).get("authorizer") or {}).get("claims")
    return principal_from_claims(claims)


def require_staff(principal: Principal, groups: Iterable[str] = STAFF_GROUPS) -> Principal:
    allowed = frozenset(groups)
    if not principal.groups & allowed:
        raise Forbidden(f"this route needs one of the groups: {', '.join(sorted(allowed))}")
    return principal


def require_customer(principal: Principal) -> str:
    """The customer id of a `/me` caller: always from the token, never from the request."""
    if not principal.customer_id:
        raise Forbidden("this route is for signed-in customers")
    return principal.customer_id


Audience = Literal["public", "customer", "staff"]
ACCESS_EXTENSION = "x-ecrm-access"


@dataclass(frozen=True)
class Access:
    """Who may call a route: anyone, the signed-in customer (their own data), or staff of some groups.

    Built with `Access.public(why)`, `Access.customer()` or `Access.staff(*groups)`; `admit` is the
    check, `describe` the route's entry in the OpenAPI document (`x-ecrm-access`).
    """

    audience: Audience
    groups: frozenset[str] = field(default_factory=frozenset)
    reason: str = ""

    @classmethod
    def public(cls, reason: str) -> Access:
        """No token at the gateway; `reason` says why that is safe (e.g. a write key checked in the handler)."""
        if not reason.strip():
            raise ValueError("a public route says why it may be public")
        return cls("public", reason=reason)

    @classmethod
    def customer(cls) -> Access:
        return cls("customer")

    @classmethod
    def staff(cls, *groups: str) -> Access:
        """Staff of `groups` (every staff group when none is named)."""
        chosen = frozenset(groups) or STAFF_GROUPS
        unknown = chosen - STAFF_GROUPS
        if unknown:
            raise ValueError(f"not staff groups: {', '.join(sorted(unknown))}")
        return cls("staff", chosen)

    def admit(self, event: Mapping[str, Any]) -> Principal | None:
        """The caller if this access lets them in (None on a public route); 401 or 403 otherwise."""
        if self.audience == "public":
            return None
        principal = principal_from_event(event)
        if self.audience == "customer":
            require_customer(principal)
        else:
            require_staff(principal, self.groups)
        return principal

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {"audience": self.audience, "groups": sorted(self.groups)}
        if self.reason:
            described["reason"] = self.reason
        return described
