"""The content engine's contract: template bodies per channel and locale, and what saving or rendering returns.

`POST /templates` takes a `Template` (one model per channel, told apart by `channel`), answers
with a `TemplateReport` or a `TemplateRejected` problem listing every problem with its locale,
part and line; `POST /templates/{id}/preview` answers with a `RenderedMessage`. The logic that
produces them is in `ecrm.personalization.content`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints, TypeAdapter, field_validator, model_validator

from ecrm.core.contract import DEFERRED, Contract
from ecrm.core.errors import EcrmError, InvalidInput
from ecrm.core.vocabulary import MessageChannel
from ecrm.personalization.sms import SmsStats

ChannelName = Literal[MessageChannel, "webhook"]
LocaleTag = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8}){0,3}$")]
LOCALE_PATTERN = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8}){0,3}$")


ShortSource = Annotated[str, StringConstraints(min_length=1, max_length=2_000)]  # subjects, titles, labels, URLs
MessageSource = Annotated[str, StringConstraints(min_length=1, max_length=5_000)]  # SMS and push bodies
LongSource = Annotated[str, StringConstraints(min_length=1, max_length=200_000)]
HtmlSource = Annotated[str, StringConstraints(min_length=1, max_length=500_000)]


class _Parts(Contract):
    model_config = ConfigDict(extra="forbid")


class EmailContent(_Parts):
    subject: ShortSource
    html: HtmlSource
    text: LongSource | None = Field(default=None, description="Derived from the HTML when absent")


class SmsContent(_Parts):
    body: MessageSource


class PushContent(_Parts):
    title: ShortSource | None = None
    body: MessageSource


class InAppContent(_Parts):
    title: ShortSource
    body: LongSource
    image_url: ShortSource | None = None
    cta_label: ShortSource | None = None
    cta_url: ShortSource | None = None


class WebhookContent(_Parts):
    body: LongSource = Field(description="JSON; every {{ }} renders as a JSON value, so no quotes around it")


class _TemplateBase(Contract):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
    default_locale: LocaleTag

    @field_validator("default_locale")
    @classmethod
    def _canonical_default(cls, locale: str) -> str:
        return normalize_locale(locale)

    @field_validator("variants", mode="before", check_fields=False)
    @classmethod
    def _canonical_variants(cls, variants: Any) -> Any:
        if not isinstance(variants, Mapping):
            return variants
        canonical: dict[str, Any] = {}
        for locale, content in variants.items():
            key = normalize_locale(locale) if isinstance(locale, str) and LOCALE_PATTERN.match(locale) else locale
            if key in canonical:
                raise ValueError(f"locale {key} appears twice")
            canonical[key] = content
        return canonical

    @model_validator(mode="after")
    def _default_has_a_variant(self) -> _TemplateBase:
        if self.default_locale not in getattr(self, "variants", {}):
            raise ValueError(f"default_locale {self.default_locale} has no variant")
        return self


class EmailTemplate(_TemplateBase):
    channel: Literal["email"]
    variants: dict[LocaleTag, EmailContent] = Field(min_length=1, max_length=50)


class SmsTemplate(_TemplateBase):
    channel: Literal["sms"]
    variants: dict[LocaleTag, SmsContent] = Field(min_length=1, max_length=50)


class PushTemplate(_TemplateBase):
    channel: Literal["push"]
    variants: dict[LocaleTag, PushContent] = Field(min_length=1, max_length=50)


class InAppTemplate(_TemplateBase):
    channel: Literal["in_app"]
    variants: dict[LocaleTag, InAppContent] = Field(min_length=1, max_length=50)


class WebhookTemplate(_TemplateBase):
    channel: Literal["webhook"]
    variants: dict[LocaleTag, WebhookContent] = Field(min_length=1, max_length=50)


Template = Annotated[
    EmailTemplate | SmsTemplate | PushTemplate | InAppTemplate | WebhookTemplate, Field(discriminator="channel")
]
TEMPLATE_ADAPTER: TypeAdapter[Template] = TypeAdapter(Template, config=DEFERRED)


def parse_template(body: Mapping[str, Any]) -> Template:
    """A `POST /templates` body as its channel's model (pydantic's ValidationError when malformed)."""
    return TEMPLATE_ADAPTER.validate_python(body)


def normalize_locale(tag: str) -> str:
    """BCP 47 casing: language lower, region upper, script title (fr-ca -> fr-CA, zh_hant_tw -> zh-Hant-TW)."""
    language, *rest = re.split(r"[-_]", tag)
    subtags = [language.lower()]
    for part in rest:
        if len(part) == 2 and part.isalpha():
            subtags.append(part.upper())
        elif len(part) == 4 and part.isalpha():
            subtags.append(part.title())
        else:
            subtags.append(part.lower())
    return "-".join(subtags)


# -- save-time results and errors ----------------------------------------------------------------
class TemplateProblem(Contract):
    locale: str
    part: str
    line: int | None = None
    reason: str


class TemplateRejected(InvalidInput):
    """The template cannot be saved (or, at render time, tried something the sandbox refused)."""

    code = "template-rejected"
    title = "Template rejected"

    def __init__(self, problems: list[TemplateProblem]) -> None:
        first = problems[0]
        where = f"{first.part} ({first.locale})" + (f" line {first.line}" if first.line else "")
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{where}: {first.reason}{more}", problems=[p.model_dump() for p in problems])
        self.problems = problems


class TemplateRenderFailed(EcrmError):
    """A validated template failed on this customer's data (e.g. text where a number was expected)."""

    status = 422
    code = "template-render-failed"
    title = "Template could not be rendered"


class VariantReport(Contract):
    locale: str
    sample: dict[str, str] = Field(description="The parts rendered with the catalogue's sample data")
    derived_text: str | None = Field(default=None, description="The text template derived from the HTML")
    sms: SmsStats | None = Field(default=None, description="Length and segments of the sample SMS")


class TemplateReport(Contract):
    """What `POST /templates` shows the author once the template is accepted."""

    channel: ChannelName
    default_locale: str
    variants: list[VariantReport]


class RenderedMessage(Contract):
    channel: ChannelName
    locale: str = Field(description="The variant rendered")
    parts: dict[str, str]
    sms: SmsStats | None = None
