"""Message content from the templates the personalization engine stores, resolved when a message is requested.

A channel's content may name a stored template (`TemplateRef`) instead of holding its parts. The template
belongs to personalization (versions, locale variants, the Pinpoint import), so broadcast asks the owner
through its templates function (`lambda:InvokeFunction`, like the customer store's contacts function) and
never reads its table. The version found is pinned on the message with the variant chosen, and the
variant's parts become the message's content: every later rendering (a redelivery, a deferral that came due)
renders the same text with broadcast's sandbox, even after a new version is saved.

What cannot be sent is refused at request time, with a 422 and nothing stored: an unknown template or
version, a template of another channel, a channel broadcast does not render templates for (webhook: its
JSON body renders each value as JSON, which broadcast's payloads do not), or parts the sandbox refuses (a
filter of personalization's own, such as `money`, a call).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from ecrm.broadcast.models import REQUIRED_PARTS, PinnedTemplate, template_ref_of
from ecrm.broadcast.rendering import check_templates
from ecrm.core.clock import Clock
from ecrm.core.errors import EcrmError, InvalidInput, ServiceUnavailable

# A stored template's parts per channel, as broadcast's content names them (personalization's names, the same).
PARTS_OF_CHANNEL: dict[str, tuple[str, ...]] = {
    "email": ("subject", "html", "text"),
    "sms": ("body",),
    "push": ("title", "body"),
    "in_app": ("title", "body", "image_url", "cta_label", "cta_url"),
}
_CACHED_VERSIONS = 256


class TemplateUnusable(EcrmError):
    status = 422
    code = "template-unusable"
    title = "Template cannot be used for this message"


@dataclass(frozen=True)
class StoredTemplate:
    """One version of a personalization template, as its owner answered it."""

    template_id: str
    version: int
    channel: str
    default_locale: str
    variants: Mapping[str, Mapping[str, Any]]

    def variant_for(self, requested: str | None) -> tuple[str, Mapping[str, Any]]:
        """(locale, parts): the exact tag, else its language, else the template's default locale."""
        if requested:
            wanted = _canonical(requested)
            for candidate in (wanted, wanted.split("-")[0]):
                for locale, parts in self.variants.items():
                    if _canonical(locale) == candidate:
                        return locale, parts
        return self.default_locale, self.variants[self.default_locale]


class TemplateSource(Protocol):
    def template(self, template_id: str, version: int | None) -> StoredTemplate | None:
        """That version (None: the latest), or None when the template or the version does not exist."""
        ...


class LambdaTemplates:
    """Personalization's templates function through `lambda:InvokeFunction` (a synchronous request/response)."""

    def __init__(self, client: Any, function_name: str) -> None:
        self.client = client
        self.function_name = function_name

    def template(self, template_id: str, version: int | None) -> StoredTemplate | None:
        if not self.function_name:
            raise ServiceUnavailable("stored templates are not available in this deployment")
        payload = {"operation": "template", "template_id": template_id, "version": version}
        response = self.client.invoke(FunctionName=self.function_name, Payload=json.dumps(payload).encode())
        body = response["Payload"].read()
        if response.get("FunctionError"):
            raise ServiceUnavailable(f"the templates function failed: {body[:300]!r}")
        answer = json.loads(body or b"{}")
        if not isinstance(answer, dict):
            raise ServiceUnavailable("the templates function answered something other than an object")
        return stored_template_of(answer)


def stored_template_of(answer: Mapping[str, Any]) -> StoredTemplate | None:
    """The templates function's answer (`{"found": false}` or `{"found": true, "template": {...}}`) read."""
    if not answer.get("found"):
        return None
    try:
        found = answer["template"]
        body = found["body"]
        return StoredTemplate(
            template_id=str(found["template_id"]),
            version=int(found["version"]),
            channel=str(body["channel"]),
            default_locale=str(body["default_locale"]),
            variants={str(k): dict(v) for k, v in body["variants"].items()},
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ServiceUnavailable(
            f"the templates function answered a template broadcast cannot read ({error})"
        ) from None


class CachedTemplates:
    """A version never changes once saved, so it is kept; "the latest" is asked again after `latest_for`.

    A campaign hands over its messages a hundred at a time with one template: one call, not a hundred.
    """

    def __init__(self, source: TemplateSource, clock: Clock, *, latest_for: timedelta = timedelta(seconds=30)) -> None:
        self.source = source
        self.clock = clock
        self.latest_for = latest_for
        self._versions: dict[tuple[str, int], StoredTemplate] = {}
        self._latest: dict[str, tuple[datetime, StoredTemplate]] = {}
        # A batch's requests are accepted several at a time (`MessageService.request_all`): one asks, the others
        # wait for its answer instead of asking too.
        self._lock = threading.Lock()

    def template(self, template_id: str, version: int | None) -> StoredTemplate | None:
        with self._lock:
            return self._template(template_id, version)

    def _template(self, template_id: str, version: int | None) -> StoredTemplate | None:
        now = self.clock.now()
        if version is None:
            held = self._latest.get(template_id)
            if held is not None and now - held[0] < self.latest_for:
                return held[1]
        elif (template_id, version) in self._versions:
            return self._versions[(template_id, version)]
        found = self.source.template(template_id, version)
        if found is not None:
            if len(self._versions) >= _CACHED_VERSIONS:
                self._versions.clear()
            self._versions[(template_id, found.version)] = found
            if version is None:
                self._latest[template_id] = (now, found)
        return found


def resolve_content(
    content: Mapping[Any, Mapping[str, Any]], source: TemplateSource | None
) -> tuple[dict[str, dict[str, Any]], dict[str, PinnedTemplate]]:
    """Each channel's parts (a template reference replaced by its variant's parts) and the pinned templates."""
    resolved: dict[str, dict[str, Any]] = {}
    pinned: dict[str, PinnedTemplate] = {}
    for channel, parts in content.items():
        ref = template_ref_of(parts)
        if ref is None:
            resolved[channel] = dict(parts)
            continue
        named = f"template {ref.template_id}" + (f" version {ref.version}" if ref.version else "")
        if channel not in PARTS_OF_CHANNEL:
            raise TemplateUnusable(
                f"content.{channel}: stored templates are sent on {', '.join(PARTS_OF_CHANNEL)}; give {channel} "
                "content inline",
                field=f"content.{channel}",
            )
        if source is None:
            raise TemplateUnusable("stored templates are not available in this deployment", field=f"content.{channel}")
        stored = source.template(ref.template_id, ref.version)
        if stored is None:
            raise TemplateUnusable(f"content.{channel}: {named} does not exist", field=f"content.{channel}")
        if stored.channel != channel:
            raise TemplateUnusable(
                f"content.{channel}: {named} is a {stored.channel} template, not {channel}", field=f"content.{channel}"
            )
        locale, variant = stored.variant_for(ref.locale)
        parts_found = {name: variant[name] for name in PARTS_OF_CHANNEL[channel] if isinstance(variant.get(name), str)}
        _require_parts(channel, parts_found, named)
        try:
            check_templates({channel: parts_found}, where=f"{named} ({locale})")
        except InvalidInput as refused:
            raise TemplateUnusable(
                f"content.{channel}: broadcast cannot render {refused.detail}", field=f"content.{channel}"
            ) from None
        resolved[channel] = parts_found
        pinned[channel] = PinnedTemplate(template_id=stored.template_id, version=stored.version, locale=locale)
    return resolved, pinned


def _require_parts(channel: str, parts: Mapping[str, Any], named: str) -> None:
    for alternatives in REQUIRED_PARTS[channel]:
        if not any(parts.get(name) for name in alternatives):
            raise TemplateUnusable(
                f"content.{channel}: {named} has no {' or '.join(alternatives)} part", field=f"content.{channel}"
            )
    subject = parts.get("subject")
    if isinstance(subject, str) and ("\r" in subject or "\n" in subject):
        raise TemplateUnusable(f"content.{channel}: {named} has a subject on several lines", field=f"content.{channel}")


def _canonical(tag: str) -> str:
    language, *rest = re.split(r"[-_]", tag)
    return "-".join([language.lower(), *(part.upper() if len(part) == 2 else part.lower() for part in rest)])
