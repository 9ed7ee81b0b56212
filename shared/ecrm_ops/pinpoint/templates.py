"""Amazon Pinpoint message templates as personalization templates (`POST /templates` bodies).

Input: what `aws pinpoint get-email-template` / `get-sms-template` print (`{"EmailTemplateResponse":
{...}}`, `{"SMSTemplateResponse": {...}}`), or the bare response, one per file or a list. Email
(`Subject`, `HtmlPart`, `TextPart`) and SMS (`Body`) templates are translated; push and voice
templates are reported, not translated.

Pinpoint placeholders are mustache-style `{{User.UserAttributes.FirstName}}`, `{{Attributes.X}}`,
`{{Address}}`, `{{Location.City}}`, with defaults in `DefaultSubstitutions`. A placeholder becomes
`{{ customer.<field> }}` when the template catalogue has that field (the field name is the snake_case
of the attribute: FirstName -> first_name), with `|default(...)` when Pinpoint had a default. A
template with any placeholder that has no such field, or a Handlebars block or helper (`{{#if}}`,
`{{/each}}`, `{{capitalize X}}`), is not translated: it is reported with every such placeholder, for
an author to rewrite, rather than saved with a part silently lost.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecrm_ops.pinpoint.endpoints import snake_case

# The template catalogue's `customer` fields (ecrm.personalization.template_catalogue.CUSTOMER) a Pinpoint
# placeholder can name.
CUSTOMER_FIELDS = frozenset(
    {
        "id",
        "first_name",
        "last_name",
        "email",
        "city",
        "country",
        "language",
        "tier",
        "loyalty_points",
        "rfm_segment",
        "churn_risk",
        "clv",
    }
)
FIXED_PLACEHOLDERS = {
    "Address": "email",
    "Location.City": "city",
    "Location.Country": "country",
    "Demographic.Locale": "language",
}
PLACEHOLDER = re.compile(r"\{\{\{?\s*([^{}]*?)\s*\}?\}\}")
RESPONSE_KEYS = {"EmailTemplateResponse": "EMAIL", "SMSTemplateResponse": "SMS"}


class TemplatesUnreadable(Exception):
    """A templates file is not JSON or holds no Pinpoint template."""


@dataclass
class TranslatedTemplates:
    bodies: list[dict[str, Any]] = field(default_factory=list)
    not_translated: dict[str, str] = field(default_factory=dict)  # template name -> why

    def lines_of_text(self) -> list[str]:
        text = [f"templates translated: {len(self.bodies)} ({', '.join(b['name'] for b in self.bodies) or '-'})"]
        text += [f"  template {name} not translated: {why}" for name, why in sorted(self.not_translated.items())]
        return text


def read_templates(paths: list[Path]) -> list[dict[str, Any]]:
    """Every Pinpoint template response in the files (or folders of `.json` files)."""
    responses: list[dict[str, Any]] = []
    for path in paths:
        files = sorted(path.glob("*.json")) if path.is_dir() else [path]
        for file in files:
            try:
                loaded = json.loads(file.read_text(encoding="utf-8-sig"))
            except json.JSONDecodeError as error:
                raise TemplatesUnreadable(f"{file.name}: not JSON ({error.msg} at line {error.lineno})") from None
            found = [_response(item) for item in (loaded if isinstance(loaded, list) else [loaded])]
            if not found or any(r is None for r in found):
                raise TemplatesUnreadable(f"{file.name}: not a Pinpoint template (get-email-template output)")
            responses += [r for r in found if r is not None]
    return responses


def _response(item: Any) -> dict[str, Any] | None:
    if not isinstance(item, dict):
        return None
    for key, kind in RESPONSE_KEYS.items():
        if isinstance(item.get(key), dict):
            return {"TemplateType": kind, **item[key]}
    return item if isinstance(item.get("TemplateName"), str) and "TemplateType" in item else None


def translate_templates(responses: list[dict[str, Any]], *, locale: str = "en") -> TranslatedTemplates:
    result = TranslatedTemplates()
    for response in responses:
        name = str(response["TemplateName"])
        kind = response.get("TemplateType")
        defaults = _defaults(response.get("DefaultSubstitutions"))
        if kind == "EMAIL":
            html_part, text_part = response.get("HtmlPart"), response.get("TextPart")
            if not html_part and text_part:
                html_part = "<p>" + html.escape(text_part).replace("\n", "<br>") + "</p>"
            parts = {"subject": response.get("Subject"), "html": html_part, "text": text_part}
        elif kind == "SMS":
            parts = {"body": response.get("Body")}
        else:
            result.not_translated[name] = f"{kind} templates are not translated (email and SMS are)"
            continue
        missing = [part for part in ("subject", "html", "body") if part in parts and not parts[part]]
        if missing:
            result.not_translated[name] = f"no {', '.join(missing)}"
            continue
        translated: dict[str, str] = {}
        problems: list[str] = []
        for part, source in parts.items():
            if source:
                translated[part], untranslatable = translate_text(str(source), defaults)
                problems += [p for p in untranslatable if p not in problems]
        if problems:
            result.not_translated[name] = "placeholders without a customer field: " + ", ".join(
                f"{{{{{p}}}}}" for p in problems
            )
            continue
        result.bodies.append(
            {
                "name": name,
                "channel": "email" if kind == "EMAIL" else "sms",
                "default_locale": locale,
                "variants": {locale: translated},
            }
        )
    return result


def translate_text(source: str, defaults: dict[str, str]) -> tuple[str, list[str]]:
    """The text with each Pinpoint placeholder as jinja2, and the placeholders that have no translation."""
    untranslatable: list[str] = []

    def replace(match: re.Match[str]) -> str:
        placeholder = match.group(1)
        field_name = customer_field(placeholder)
        if field_name is None:
            untranslatable.append(placeholder)
            return match.group(0)
        fallback = defaults.get(placeholder)
        return f"{{{{ customer.{field_name}" + (f"|default({json.dumps(fallback)})" if fallback else "") + " }}"

    return PLACEHOLDER.sub(replace, source), untranslatable


def customer_field(placeholder: str) -> str | None:
    """The catalogue field a Pinpoint placeholder names, or None (a helper, a block, an unknown attribute)."""
    if placeholder in FIXED_PLACEHOLDERS:
        return FIXED_PLACEHOLDERS[placeholder]
    for prefix in ("User.UserAttributes.", "Attributes."):
        if placeholder.startswith(prefix):
            name = snake_case(placeholder.removeprefix(prefix))
            return name if name in CUSTOMER_FIELDS else None
    return None


def _defaults(raw: Any) -> dict[str, str]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            return {}
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
