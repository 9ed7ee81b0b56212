"""Who is calling: the principal behind an API request, from the Cognito authorizer's claims.

API Gateway verifies the ID token (the embedded local cloud does the same against the local
Cognito) and passes its claims in `requestContext.authorizer.claims`. Group checks happen here,
in the function, because a Cognito authorizer does not check groups.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from ecrm.core.errors import Forbidden, Unauthorized

STAFF_GROUPS = frozenset({"admin", "marketer", "analyst", "agent"})
CUSTOMER_ID_CLAIM = "custom:customer_id"


class Principal(BaseModel):
    model_config = ConfigDict(frozen=True)

    subject: str
    username: str | None = None
    email: str | None = None
    groups: frozenset[str] = frozenset()
    customer_id: str | None = None

    @property
    def is_staff(self) -> bool:
        return bool(self.groups & STAFF_GROUPS)


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
