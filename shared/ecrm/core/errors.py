"""Domain errors and their RFC 9457 problem+json form.

Logic raises these; the API layer maps them to HTTP in one place (`ecrm.core.api`). A 5xx is
always a bug or an outage, never bad input.
"""

from __future__ import annotations

from typing import Any

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://ecrm.dev/problems/"
STANDARD_MEMBERS = frozenset({"type", "title", "status", "detail", "instance", "code"})


class EcrmError(Exception):
    """Base of every error the platform raises on purpose."""

    status = 500
    code = "internal-error"
    title = "Internal error"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        body = problem(self.status, self.title, self.detail, code=self.code, instance=instance)
        body.update({k: v for k, v in self.extensions.items() if k not in STANDARD_MEMBERS})
        return body


class InvalidInput(EcrmError):
    status = 400
    code = "invalid-input"
    title = "Invalid input"


class Unauthorized(EcrmError):
    status = 401
    code = "unauthorized"
    title = "Unauthorized"


class Forbidden(EcrmError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class NotFound(EcrmError):
    status = 404
    code = "not-found"
    title = "Not found"


class Conflict(EcrmError):
    status = 409
    code = "conflict"
    title = "Conflict"


class ServiceUnavailable(EcrmError):
    """A dependency failed after retries; the request changed nothing durable and may be retried."""

    status = 503
    code = "service-unavailable"
    title = "Service unavailable"


class ConfigurationError(EcrmError):
    code = "configuration-error"
    title = "Function misconfigured"


def problem(
    status: int, title: str, detail: str, *, code: str | None = None, instance: str | None = None, **extensions: Any
) -> dict[str, Any]:
    """An RFC 9457 problem document."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + (code or title.lower().replace(" ", "-")),
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    # Extensions never override the standard members (RFC 9457 section 3.2).
    body.update({k: v for k, v in extensions.items() if k not in STANDARD_MEMBERS})
    return body
