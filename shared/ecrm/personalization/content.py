"""Personalised content: the save-time validation of templates, their compilation, and rendering.

Owns what is behind `POST /templates` (`compile_template`: accept or reject) and
`POST /templates/{id}/preview` (`render` / `preview` with a real customer's data); the bodies are
in `ecrm.personalization.content_models` (re-exported here), the routes and the storage are the
API's. A template is validated when it is saved, not when a campaign goes out: a
template that does not compile, references a field outside the catalogue, or fails to render with
sample data (or with no data at all) is rejected with every problem's locale, part, line and
reason, so the author fixes it before a send. `compile_template` does that work once per template
version (cached), and `render` is the per-recipient path: a locale lookup and a jinja render per
part, in the sandbox of `ecrm.personalization.template_sandbox`.

Locales: the variant for the exact tag (fr-CA), else its language (fr), else the template's
default. Money and dates follow the requested locale when the variant is in its language (fr-CA
prices for a fr variant), the variant's locale otherwise (an English fallback formats in English).
"""

from __future__ import annotations

import hashlib
import json
import traceback
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ecrm.personalization.content_models import (
    LOCALE_PATTERN,
    ChannelName,
    EmailContent,
    InAppContent,
    PushContent,
    RenderedMessage,
    SmsContent,
    Template,
    TemplateProblem,
    TemplateRejected,
    TemplateRenderFailed,
    TemplateReport,
    VariantReport,
    WebhookContent,
    normalize_locale,
    parse_template,
)
from ecrm.personalization.sms import sms_stats
from ecrm.personalization.template_catalogue import build_context, empty_context, sample_context

if TYPE_CHECKING:
    from jinja2 import Template as JinjaTemplate

    from ecrm.personalization.template_sandbox import EnvironmentKind

# jinja2 and the sandbox are imported where templates are compiled or rendered: the routes that only
# read offers and recommendations (and the API's cold start) never pay for them.

__all__ = [
    "ChannelName",
    "CompiledTemplate",
    "EmailContent",
    "InAppContent",
    "PushContent",
    "RenderedMessage",
    "SmsContent",
    "Template",
    "TemplateProblem",
    "TemplateRejected",
    "TemplateRenderFailed",
    "TemplateReport",
    "WebhookContent",
    "build_context",
    "compile_template",
    "parse_template",
    "preview",
    "render",
]

_DERIVED_FILTERS = frozenset({"heading"})  # the derived text part's underlined headings
_CACHE_SIZE = 256


# -- compiled templates --------------------------------------------------------------------------
@dataclass(frozen=True)
class CompiledPart:
    name: str
    template: JinjaTemplate
    derived: bool = False  # a text part derived from the HTML: tidied after rendering


@dataclass(frozen=True)
class CompiledVariant:
    locale: str
    language: str
    parts: tuple[CompiledPart, ...]


@dataclass(frozen=True)
class CompiledTemplate:
    name: str
    channel: ChannelName
    default_locale: str
    variants: Mapping[str, CompiledVariant]
    report: TemplateReport
    _resolved: dict[str, tuple[CompiledVariant, str]] = field(default_factory=dict, repr=False, compare=False)

    def variant_for(self, requested: str | None) -> tuple[CompiledVariant, str]:
        """(variant, locale to format numbers and dates in): exact tag, then language, then default."""
        key = requested or ""
        resolved = self._resolved.get(key)
        if resolved is None:
            resolved = self._resolve(requested)
            if len(self._resolved) >= _CACHE_SIZE:
                self._resolved.clear()
            self._resolved[key] = resolved
        return resolved

    def _resolve(self, requested: str | None) -> tuple[CompiledVariant, str]:
        if not requested or not LOCALE_PATTERN.match(requested):
            variant = self.variants[self.default_locale]
            return variant, variant.locale
        locale = normalize_locale(requested)
        language = locale.split("-")[0]
        variant = self.variants.get(locale) or self.variants.get(language) or self.variants[self.default_locale]
        return variant, locale if variant.language == language else variant.locale


_COMPILED: OrderedDict[str, CompiledTemplate] = OrderedDict()


def compile_template(template: Template) -> CompiledTemplate:
    """Validate and compile every part of every locale; cached by content, so a template compiles once.

    Raises `TemplateRejected` with every problem found (syntax, unknown fields, forbidden
    constructs, runtime errors with sample or empty data, a webhook body that is not JSON).
    """
    key = hashlib.sha256(template.model_dump_json().encode()).hexdigest()
    cached = _COMPILED.get(key)
    if cached is not None:
        _COMPILED.move_to_end(key)
        return cached
    compiled = _compile(template)
    _COMPILED[key] = compiled
    if len(_COMPILED) > _CACHE_SIZE:
        _COMPILED.popitem(last=False)
    return compiled


def _environment_kind(channel: str, part: str) -> EnvironmentKind:
    if channel == "email" and part == "html":
        return "html"
    return "json" if channel == "webhook" else "text"


def _compile(template: Template) -> CompiledTemplate:
    problems: list[TemplateProblem] = []
    variants: dict[str, CompiledVariant] = {}
    derived_sources: dict[str, str] = {}
    for locale, content in template.variants.items():
        parts: list[CompiledPart] = []
        for name, source in content.model_dump(exclude_none=True).items():
            part = _compile_part(template.channel, locale, name, source, problems)
            if part is not None:
                parts.append(part)
        if isinstance(content, EmailContent) and content.text is None and len(parts) == 2:
            derived = _derive_text(locale, content.html, problems)
            if derived is not None:
                parts.append(derived[0])
                derived_sources[locale] = derived[1]
        variants[locale] = CompiledVariant(locale, locale.split("-")[0], tuple(parts))
    if problems:
        raise TemplateRejected(problems)
    reports = [
        _sample_report(template.channel, variant, derived_sources.get(locale), problems)
        for locale, variant in variants.items()
    ]
    if problems:
        raise TemplateRejected(problems)
    report = TemplateReport(channel=template.channel, default_locale=template.default_locale, variants=reports)
    return CompiledTemplate(template.name, template.channel, template.default_locale, variants, report)


def _compile_part(
    channel: str, locale: str, name: str, source: str, problems: list[TemplateProblem]
) -> CompiledPart | None:
    from ecrm.personalization.template_sandbox import ENVIRONMENTS, check_source

    kind = _environment_kind(channel, name)
    environment = ENVIRONMENTS[kind]
    found = check_source(environment, source, structured_output=kind == "json")
    if not found:
        try:
            return CompiledPart(name, environment.from_string(source))
        except Exception as error:  # a compile-time error the parse did not catch
            found = [(getattr(error, "lineno", None), str(error))]
    problems.extend(TemplateProblem(locale=locale, part=name, line=line, reason=reason) for line, reason in found)
    return None


def _derive_text(locale: str, html: str, problems: list[TemplateProblem]) -> tuple[CompiledPart, str] | None:
    """The text part from the HTML, underlined headings first, plain headings if those cannot nest."""
    from ecrm.personalization.html_text import derive_text_source
    from ecrm.personalization.template_sandbox import ENVIRONMENTS, check_source

    environment = ENVIRONMENTS["text"]
    found: list[tuple[int | None, str]] = []
    for underline in (True, False):
        try:
            source = derive_text_source(html, ENVIRONMENTS["html"], underline=underline)
            found = check_source(environment, source, extra_filters=_DERIVED_FILTERS)
            if not found:
                return CompiledPart("text", environment.from_string(source), derived=True), source
        except Exception as error:  # the converter met HTML it cannot follow
            found = [(getattr(error, "lineno", None), str(error))]
    line, reason = found[0]
    problems.append(
        TemplateProblem(
            locale=locale,
            part="text",
            line=None,
            reason=f"the text part could not be derived from the HTML ({reason}"
            f"{f' at line {line} of the derived text' if line else ''}): write a text part",
        )
    )
    return None


def _sample_report(
    channel: ChannelName, variant: CompiledVariant, derived_text: str | None, problems: list[TemplateProblem]
) -> VariantReport:
    """Render with sample data and with no data at all: runtime errors surface at save time, not at send."""
    sample: dict[str, str] = {}
    for context, label in ((sample_context(), "sample data"), (empty_context(), "a customer with no data")):
        for part in variant.parts:
            try:
                text = _render_part(part, context, variant.locale)
            except Exception as error:
                reason = f"fails with {label}: {error}"
                problems.append(
                    TemplateProblem(locale=variant.locale, part=part.name, line=_line_of(error), reason=reason)
                )
                continue
            if channel == "webhook":
                json_problem = _json_problem(text)
                if json_problem:
                    problems.append(
                        TemplateProblem(locale=variant.locale, part=part.name, reason=f"with {label}, {json_problem}")
                    )
            sample.setdefault(part.name, text)
    stats = sms_stats(sample.get("body", "")) if channel == "sms" else None
    return VariantReport(locale=variant.locale, sample=sample, derived_text=derived_text, sms=stats)


def _json_problem(text: str) -> str | None:
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        return (
            f"the body is not valid JSON: {error.msg} (rendered line {error.lineno}, column {error.colno}); "
            'every {{ }} already renders a JSON value, so write "name": {{ customer.first_name }} without quotes'
        )
    return None


def _line_of(error: BaseException) -> int | None:
    """The template line of a runtime error: jinja2 rewrites tracebacks to point into the template."""
    line = getattr(error, "lineno", None)
    for frame, lineno in traceback.walk_tb(error.__traceback__):
        if frame.f_code.co_filename == "<template>":
            line = lineno
    return line


# -- rendering -----------------------------------------------------------------------------------
def _render_part(part: CompiledPart, context: Mapping[str, Any], locale: str) -> str:
    from ecrm.personalization.html_text import tidy_text

    text = part.template.render(context, locale=locale)
    return tidy_text(text) if part.derived else text


def render(compiled: CompiledTemplate, context: Mapping[str, Any], locale: str | None = None) -> RenderedMessage:
    """Every part of the template for one recipient, in `locale` (default: the customer's language).

    `context` comes from `build_context`. Raises `TemplateRejected` if the sandbox refuses
    something (a template that was never validated) and `TemplateRenderFailed` if this
    customer's data breaks a validated template.
    """
    from jinja2.sandbox import SecurityError

    if locale is None:
        customer = context.get("customer")
        locale = customer.get("language") if isinstance(customer, dict) else None
    variant, format_locale = compiled.variant_for(locale)
    parts: dict[str, str] = {}
    for part in variant.parts:
        try:
            parts[part.name] = _render_part(part, context, format_locale)
        except SecurityError as error:
            problem = TemplateProblem(locale=variant.locale, part=part.name, line=_line_of(error), reason=str(error))
            raise TemplateRejected([problem]) from error
        except Exception as error:
            where = f"{part.name} ({variant.locale}) line {_line_of(error)}"
            raise TemplateRenderFailed(f"{where}: {error}", part=part.name, locale=variant.locale) from error
    stats = None
    if compiled.channel == "sms":
        stats = sms_stats(parts.get("body", ""))
    elif compiled.channel == "webhook":
        json_problem = _json_problem(parts.get("body", ""))
        if json_problem:
            raise TemplateRenderFailed(f"body ({variant.locale}): {json_problem}", part="body", locale=variant.locale)
    return RenderedMessage.model_construct(channel=compiled.channel, locale=variant.locale, parts=parts, sms=stats)


def preview(
    compiled: CompiledTemplate,
    customer: Mapping[str, Any],
    recommendations: Sequence[Mapping[str, Any]] = (),
    offer: Mapping[str, Any] | None = None,
    links: Mapping[str, Any] | None = None,
    brand: Mapping[str, Any] | None = None,
    locale: str | None = None,
) -> RenderedMessage:
    """`POST /templates/{id}/preview`: the template with a real customer's data (the lead loads it)."""
    return render(compiled, build_context(customer, recommendations, offer, links or {}, brand), locale)
